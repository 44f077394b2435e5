"""Playlists of the library: static, smart, session and thinking playlists, their
folders (crates), and their exchange with other DJ software."""

from __future__ import annotations
