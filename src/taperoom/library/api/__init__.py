"""HTTP routers of the library app, one module per resource."""

from __future__ import annotations
