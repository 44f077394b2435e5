"""Taperoom: a self-hosted audio server for DJs and sound artists."""

from __future__ import annotations

__version__ = "0.1.0"
