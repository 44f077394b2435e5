"""Shared audio primitives."""

from __future__ import annotations
