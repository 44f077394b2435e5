"""The ephemeral app: WAV files that wear out as they are played."""

from __future__ import annotations
