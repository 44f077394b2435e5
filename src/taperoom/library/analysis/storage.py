"""Where analysis results go: the columns of every track of a recording (except the fields
its user set himself) and the recording's waveforms.

:meth:`ResultStore.store_stage` is the one road of results into the library, for
this process's analyzer and an external server's callbacks alike.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy.orm import Session, sessionmaker

from taperoom.db import transaction
from taperoom.events import Event, EventBus
from taperoom.library.analysis.results import (
    basic_fields,
    characteristics_fields,
    levels_from_contract,
)
from taperoom.library.repository import analysis as repo
from taperoom.library.schemas import with_key_names

if TYPE_CHECKING:
    from taperoom.library.analysis.external import ExternalAnalysis

__all__ = ["ResultStore"]


class ResultStore:
    """Stores the stages of analyses on the library's tracks and waveforms.

    Parameters
    ----------
    db : sessionmaker
        Session factory of the library database.
    bus : EventBus
        Receives ``track:updated`` for every track whose fields changed.
    external : ExternalAnalysis, optional
        The external analysis server, whose stem store keeps its stems.
    """

    def __init__(self, db: sessionmaker[Session], bus: EventBus,
                 external: ExternalAnalysis | None) -> None:
        self.db = db
        self.bus = bus
        self.external = external

    def store_stage(self, file_hash: str, stage: str, data: dict[str, Any], *,
                    levels: list[Any] | None = None) -> dict[str, Any]:
        """Store one stage's data on every track of `file_hash` (and its waveforms).

        The fields a track's user set himself (``tracks.user_fields``: BPM, key,
        first beat...) are kept (:func:`~taperoom.library.repository.analysis.apply_results`).

        Parameters
        ----------
        file_hash : str
        stage : {"basic_features", "characteristics", "stems"}
            Other stages are accepted and not stored (as the original did);
            ``stems`` (an external server's) are converted to WAV in the stem
            cache (:class:`~taperoom.library.stems.delivery.StemStore`) and set
            ``stems_path`` (cleared on the tracks whose stems the cache evicted).
        data : dict
            The stage's data (contract §3).
        levels : list of WaveformLevel, optional
            The waveforms already as levels (this process's analyzer); else
            those of ``data["waveforms"]``, if any.

        Returns
        -------
        dict
            The columns the stage sets (before each track's own fields are kept);
            ``track:updated`` tells each track's changes, with the names of its key
            (``camelot``, ``open_key``) when they change; ``engine:first_beat_offset``
            goes out for each track whose first beat moved (the engine link
            forwards it to the audio engine).

        Raises
        ------
        ValueError
            A value of `data` has the wrong type.
        """
        from taperoom.analysis.waveform import encode_waveforms

        evicted: list[str] = []
        if stage == "basic_features":
            fields = basic_fields(data)
            if levels is None and data.get("waveforms") is not None:
                levels = levels_from_contract(data["waveforms"])
        elif stage == "characteristics":
            fields = characteristics_fields(data)
        elif stage == "stems" and self.external is not None:
            stored = self.external.stems.store(file_hash, data)
            fields, evicted = {"stems_path": stored.path}, stored.evicted
        else:
            return {}
        blobs = [(lv.zoom_level, lv.sample_rate, lv.samples_per_pixel, lv.num_pixels,
                  encode_waveforms([lv])) for lv in levels or ()]
        with transaction(self.db) as s:
            firsts = ({t.id: t.first_beat_offset for t in repo.tracks_with_hash(s, file_hash)}
                      if "first_beat_offset" in fields else {})
            written = repo.apply_results(s, file_hash, fields)
            for gone in evicted:
                written |= repo.apply_results(s, gone, {"stems_path": None})
            if blobs:
                repo.replace_waveforms(s, file_hash, blobs)
            keys = {t.id: (t.musical_key, t.mode) for t in repo.tracks_with_hash(s, file_hash)
                    } if {"musical_key", "mode"} & set(fields) else {}
        for track_id, changes in written.items():
            shown = {k: v for k, v in changes.items() if not k.endswith("_data")}
            if shown:
                self.bus.send(Event.TRACK_UPDATED, {"trackId": track_id, "changes": (
                    with_key_names(shown, *keys.get(track_id, (None, None))))})
            first = changes.get("first_beat_offset")
            if first is not None and first != firsts.get(track_id):  # the engine is told
                self.bus.send(Event.ENGINE_FIRST_BEAT_OFFSET,
                              {"trackId": track_id, "firstBeatOffset": first})
        return fields
