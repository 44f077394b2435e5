"""The slot layout of the metadata JSON: valid JSON, slots in place, never across a sector."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from taperoom.ephemeral import metafile
from taperoom.ephemeral.metafile import COUNT_WIDTH, SLOT_ALIGN


def _meta(n: int, *, title: str = "x") -> dict[str, object]:
    return {"filename": f"{title}.wav", "title": title, "duration": n * 0.5,
            "segment_duration": 0.5, "total_segments": n,
            "segment_play_counts": [(i * 7919) % 1000 for i in range(n)],
            "created_at": "2025-11-09T12:00:00.123456Z", "total_streams": 42}


@pytest.mark.parametrize("n", [1, 10, 46, 47, 600, 7200])
def test_render_is_the_same_json_with_slots_inside_one_sector(n: int) -> None:
    """json.loads gives the metadata back; every slot holds its number and no slot
    crosses a multiple of SLOT_ALIGN bytes."""
    meta = _meta(n)
    data, layout = metafile.render(meta)
    assert json.loads(data) == meta
    assert len(layout.counts) == n
    for offset, value in zip([*layout.counts, layout.streams],
                             [*meta["segment_play_counts"], 42], strict=True):  # type: ignore[misc]
        slot = data[offset:offset + COUNT_WIDTH]
        assert int(slot) == value
        assert slot == str(value).rjust(COUNT_WIDTH).encode()
        assert offset // SLOT_ALIGN == (offset + COUNT_WIDTH - 1) // SLOT_ALIGN


def test_non_ascii_names_are_escaped_so_offsets_are_bytes() -> None:
    """A title with accents and emoji renders ASCII-only; slot offsets stay exact."""
    meta = _meta(30, title="Café ☕ \"quoted\"")
    data, layout = metafile.render(meta)
    assert data.isascii()
    assert json.loads(data) == meta
    assert [int(data[o:o + COUNT_WIDTH]) for o in layout.counts] == meta["segment_play_counts"]


def test_missing_total_streams_gets_a_slot() -> None:
    """Metadata of an older original (no total_streams) renders with total_streams 0."""
    meta = _meta(3)
    del meta["total_streams"]
    data, layout = metafile.render(meta)
    assert json.loads(data)["total_streams"] == 0
    assert int(data[layout.streams:layout.streams + COUNT_WIDTH]) == 0


def test_layout_is_found_only_in_the_slot_layout() -> None:
    """layout_of accepts what render wrote, and refuses the original's indent=2 and compact JSON."""
    meta = _meta(20)
    data, layout = metafile.render(meta)
    assert metafile.layout_of(data, meta) == layout
    for other in (json.dumps(meta, indent=2).encode(), json.dumps(meta).encode(),
                  data.replace(b"     ", b"", 1)):
        parsed = metafile.parse(other)
        assert parsed is not None
        assert metafile.layout_of(other, parsed) is None


def test_write_slot_changes_only_its_bytes(tmp_path: Path) -> None:
    """Counting in place rewrites ten bytes; the file stays valid JSON with the new count."""
    meta = _meta(100)
    data, layout = metafile.render(meta)
    path = tmp_path / "m.json"
    path.write_bytes(data)
    fd = os.open(path, os.O_RDWR)
    try:
        off = layout.counts[57]
        before = metafile.read_slot(fd, off)
        metafile.write_slot(fd, off, before + 1)
        metafile.write_slot(fd, layout.streams, 9_999_999_999)
        with pytest.raises(OverflowError):
            metafile.write_slot(fd, off, 10 ** COUNT_WIDTH)
    finally:
        os.close(fd)
    after = path.read_bytes()
    changed = [i for i, (a, b) in enumerate(zip(data, after, strict=True)) if a != b]
    assert all(off <= i < off + COUNT_WIDTH or layout.streams <= i < layout.streams + COUNT_WIDTH
               for i in changed)
    loaded = json.loads(after)
    assert loaded["segment_play_counts"][57] == meta["segment_play_counts"][57] + 1  # type: ignore[index]
    assert loaded["total_streams"] == 9_999_999_999


def test_parse_refuses_non_objects() -> None:
    """parse gives None for torn or non-object content instead of raising."""
    assert metafile.parse(b'{"a": 00}') is None
    assert metafile.parse(b"[1, 2]") is None
    assert metafile.parse(b"\xff") is None
    assert metafile.parse(b'{"a": 1}') == {"a": 1}
