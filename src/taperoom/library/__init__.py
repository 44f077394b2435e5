"""The library app: a DJ's music library backend."""

from __future__ import annotations
