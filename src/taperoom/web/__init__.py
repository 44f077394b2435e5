"""Web helpers shared by the apps: error mapping, CORS, Host names, origins, sign-in."""

from __future__ import annotations
