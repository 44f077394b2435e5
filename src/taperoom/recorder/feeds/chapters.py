"""Chapters of a recording from its cue sheet, in the podcast namespace's JSON format.

The recorder writes the ICY ``StreamTitle`` changes heard during a recording as a
cue sheet beside the MP3 (:func:`taperoom.recorder.tagging.write_cue_sheet`):
one ``TRACK nn AUDIO`` per title with ``TITLE``, an optional ``PERFORMER`` and
``INDEX 01 mm:ss:ff`` (75 frames per second). :func:`parse_cue_sheet` reads the
tracks back; :func:`chapters_document` renders them as the JSON chapters file of
the podcast namespace (Podcast Index, *JSON Chapters Format*, version 1.2.0:
``{"version": "1.2.0", "chapters": [{"startTime": s, "title": ...}]}``), which a
feed item names with ``<podcast:chapters url=... type="application/json+chapters"/>``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

#: Media type of a JSON chapters file (podcast namespace, ``<podcast:chapters>``).
CHAPTERS_MEDIA_TYPE = "application/json+chapters"
#: Version of the JSON chapters format written.
CHAPTERS_VERSION = "1.2.0"
#: Cue sheet frames per second (CD-DA sectors, IEC 60908).
FRAMES_PER_SECOND = 75

_TRACK = re.compile(r'^\s*TRACK\s+(\d+)\s+\w+\s*$', re.I)
_FIELD = re.compile(r'^\s*(TITLE|PERFORMER)\s+"(.*)"\s*$', re.I)
_INDEX = re.compile(r'^\s*INDEX\s+01\s+(\d+):(\d{1,2}):(\d{1,2})\s*$', re.I)


@dataclass(frozen=True)
class Chapter:
    """One chapter: where it starts and what it is called.

    Attributes
    ----------
    start_seconds : float
        Offset from the start of the audio file, s (>= 0).
    title : str
        ``"Performer - Title"`` when the cue names a performer, else the title.
    """

    start_seconds: float
    title: str


def parse_cue_sheet(text: str) -> list[Chapter]:
    """The tracks of a cue sheet as chapters, in order of start time.

    Only ``TRACK`` blocks with an ``INDEX 01`` count; the sheet's own (album)
    ``TITLE``/``PERFORMER`` before the first track are ignored. ``''`` in a
    quoted field is read back as ``"`` (the writer's escape). Two tracks at the
    same start keep the later one.

    Parameters
    ----------
    text : str
        Contents of the sheet (any line ends).

    Returns
    -------
    list of Chapter
        Empty when the sheet has no usable track.
    """
    found: dict[float, Chapter] = {}
    in_track = False
    title = performer = ""
    start: float | None = None

    def close() -> None:
        if in_track and start is not None:
            name = title or "Untitled"
            if performer:
                name = f"{performer} - {name}"
            found[start] = Chapter(start_seconds=start, title=name)

    for line in text.splitlines():
        if _TRACK.match(line):
            close()
            in_track, title, performer, start = True, "", "", None
            continue
        if not in_track:
            continue
        field = _FIELD.match(line)
        if field:
            value = field.group(2).replace("''", '"').strip()
            if field.group(1).upper() == "TITLE":
                title = value
            else:
                performer = value
            continue
        index = _INDEX.match(line)
        if index:
            minutes, seconds, frames = (int(g) for g in index.groups())
            start = round(minutes * 60 + seconds + frames / FRAMES_PER_SECOND, 3)
    close()
    return [found[k] for k in sorted(found)]


def chapters_document(chapters: list[Chapter], *, title: str | None = None) -> dict[str, Any]:
    """The JSON chapters file of the podcast namespace.

    Parameters
    ----------
    chapters : list of Chapter
        In order of start time.
    title : str, optional
        Title of the episode (the document's ``title``).

    Returns
    -------
    dict
        ``{"version": "1.2.0", ["title": ...,] "chapters": [{"startTime": s,
        "title": t}, ...]}``; ``startTime`` in seconds.
    """
    doc: dict[str, Any] = {"version": CHAPTERS_VERSION}
    if title:
        doc["title"] = title
    doc["chapters"] = [{"startTime": c.start_seconds, "title": c.title} for c in chapters]
    return doc
