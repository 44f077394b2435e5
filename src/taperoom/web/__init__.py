"""Web helpers shared by the apps: error mapping, CORS."""

from __future__ import annotations
