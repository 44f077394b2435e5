"""The metadata JSON of a track, laid out so that a play count changes in place.

The file is the contract's JSON object (``json.load`` reads it as any other), with
two numbers written in fixed-width *slots*: every entry of ``segment_play_counts``
and ``total_streams`` is right-aligned in :data:`COUNT_WIDTH` characters, padded
with spaces (JSON whitespace)::

    {"filename":"x.wav",...,"segment_play_counts":[         3,         0],...,
     "total_streams":         7}

Counting a play then rewrites the ten bytes of one slot with one ``os.pwrite``
instead of replacing the whole file (temp file, fsync, rename, fsync of the
folder), which costs about eight times less CPU and stalls far less. No slot
crosses a multiple of :data:`SLOT_ALIGN` bytes (spaces are inserted before a slot
that would), so the write of a slot is all or nothing: Linux stops a buffered
write on SIGKILL only between pages, and disks write a 512-byte sector
atomically. Files in any other layout (the original's ``indent=2``, an older
version of this app) are read as they are and rewritten in this layout, whole
and atomically, before their first in-place change.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import Any

#: Characters of one count slot: ten digits, up to 9,999,999,999 plays.
COUNT_WIDTH = 10
#: No slot crosses a multiple of this many bytes (a disk sector; so never a 4 KiB page either).
SLOT_ALIGN = 512

COUNTS_KEY = "segment_play_counts"
STREAMS_KEY = "total_streams"


@dataclass(frozen=True)
class Layout:
    """Byte offsets of the slots of one rendered metadata file.

    Attributes
    ----------
    counts : tuple of int
        Offset of the slot of each segment's play count, in segment order.
    streams : int
        Offset of the ``total_streams`` slot.
    width : int
        Characters per slot (:data:`COUNT_WIDTH`).
    """

    counts: tuple[int, ...]
    streams: int
    width: int = COUNT_WIDTH


class _Writer:
    """Accumulates ASCII text and pads before slots that would cross SLOT_ALIGN."""

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.pos = 0

    def text(self, s: str) -> None:
        self.parts.append(s)
        self.pos += len(s)

    def slot(self, value: int) -> int:
        if self.pos // SLOT_ALIGN != (self.pos + COUNT_WIDTH - 1) // SLOT_ALIGN:
            self.text(" " * (SLOT_ALIGN - self.pos % SLOT_ALIGN))
        at = self.pos
        self.text(format_slot(value))
        return at


def format_slot(value: int) -> str:
    """`value` right-aligned in :data:`COUNT_WIDTH` characters.

    Raises
    ------
    OverflowError
        `value` has more than :data:`COUNT_WIDTH` digits.
    """
    text = f"{value:>{COUNT_WIDTH}d}"
    if len(text) != COUNT_WIDTH:
        raise OverflowError(f"play count {value} does not fit in {COUNT_WIDTH} digits")
    return text


def render(meta: dict[str, Any]) -> tuple[bytes, Layout]:
    """Serialise metadata in the slot layout.

    Keys keep their order; ``total_streams`` is added (0) when missing. Strings
    are written ASCII-only (``json.dumps`` escapes), so characters are bytes.

    Parameters
    ----------
    meta : dict
        Metadata whose ``segment_play_counts`` are ints in ``[0, 10**10)``.

    Returns
    -------
    data : bytes
        The file's content.
    layout : Layout
        Where its slots are.
    """
    w = _Writer()
    counts: list[int] = []
    streams = -1
    w.text("{")
    items = list(meta.items())
    if STREAMS_KEY not in meta:
        items.append((STREAMS_KEY, 0))
    for k, (key, value) in enumerate(items):
        w.text(("," if k else "") + json.dumps(key) + ":")
        if key == COUNTS_KEY:
            w.text("[")
            for i, c in enumerate(value):
                if i:
                    w.text(",")
                counts.append(w.slot(int(c)))
            w.text("]")
        elif key == STREAMS_KEY:
            streams = w.slot(int(value))
        else:
            w.text(json.dumps(value, separators=(",", ":")))
    w.text("}")
    return "".join(w.parts).encode("ascii"), Layout(tuple(counts), streams)


def parse(data: bytes) -> dict[str, Any] | None:
    """The metadata in `data`, or None when it is not a JSON object."""
    try:
        meta = json.loads(data)
    except (ValueError, UnicodeDecodeError):
        return None
    return meta if isinstance(meta, dict) else None


def layout_of(data: bytes, meta: dict[str, Any]) -> Layout | None:
    """The slot layout of `data` (the bytes `meta` was parsed from), or None.

    `data` is in the slot layout exactly when rendering `meta` again gives the same
    bytes; only then may its slots be changed in place.
    """
    try:
        again, layout = render(meta)
    except (OverflowError, TypeError, ValueError):
        return None
    return layout if again == data else None


def read_slot(fd: int, offset: int) -> int:
    """The number in the slot at `offset` of `fd`.

    Raises
    ------
    ValueError
        The slot does not hold a number (the file changed under the caller).
    """
    raw = os.pread(fd, COUNT_WIDTH, offset)
    if len(raw) != COUNT_WIDTH:
        raise ValueError("metadata slot past the end of the file")
    return int(raw)


def write_slot(fd: int, offset: int, value: int) -> None:
    """Write `value` into the slot at `offset` of `fd` with one ``pwrite``.

    Raises
    ------
    OverflowError
        `value` does not fit in a slot.
    OSError
        The write failed or was short.
    """
    data = format_slot(value).encode("ascii")
    if os.pwrite(fd, data, offset) != len(data):
        raise OSError(f"short write of a metadata slot at byte {offset}")
