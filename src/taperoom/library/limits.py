"""Bounds of stored values, shared by the ORM models, the wire schemas and the scanner.

This module imports nothing, so that the scanner's reader processes (see
:func:`taperoom.library.scanner.read.reader_pool`) can use the bounds without
importing the ORM.
"""

from __future__ import annotations

#: Largest value of an ``Integer`` column on every backend (PostgreSQL's 4-byte
#: ``integer``; SQLite would take 8 bytes).
MAX_INTEGER = 2**31 - 1
