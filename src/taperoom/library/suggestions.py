"""Harmonic next-track suggestions: what mixes well after a track, ranked, with reasons.

``GET /api/tracks/:id/suggestions`` asks :class:`SuggestionService` for the tracks
that may follow one, as Mixed In Key's and rekordbox's "related tracks" do:

* **key**: a move of the Camelot wheel (same key, ±1, the relative major or
  minor, the +2 and +7 energy boosts; :mod:`taperoom.playlists.harmony`);
* **tempo**: within ``SUGGESTION_BPM_PERCENT`` % of the playing track's BPM, or of
  its half or double;
* **energy** (optional): higher (``up``), equal (``same``) or lower (``down``) on
  the 1-10 energy level of the analysis;
* never a missing track, nor one already played in a session that is not
  finalized; optionally only the tracks of one playlist.

It works from whatever the library knows: the BPM and key come from the
analysis, or from the file's tags when the track is not analysed yet (the
scanner stores tagged values in the same columns). A rule whose value the playing
track lacks is not applied; a candidate lacking a value a rule needs is left out,
except the energy, without which it ranks after those that match.

Ranking, lower is better: the key move's rank (0 same key, 1 a neighbour or
the relative key, 2 an energy boost, 3 keys unknown), plus the tempo difference
as a fraction of the allowed range (0-1), plus the energy step beyond the
nearest one asked for (0.5 per level; 1.5 when unknown).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy.orm import Session, sessionmaker

from taperoom.errors import NotFound
from taperoom.library.repository import suggestions as repo
from taperoom.library.repository import tracks as track_repo
from taperoom.library.schemas import track_row_dict
from taperoom.library.tracks import TrackNotFound, canonical_id
from taperoom.playlists.harmony import bpm_match, bpm_windows, compatible_keys

#: Directions of the ``energy`` query parameter.
Energy = Literal["up", "same", "down"]
#: Ranking penalty of a candidate whose energy is unknown while a direction is asked.
UNKNOWN_ENERGY_PENALTY = 1.5
#: Ranking weight of each energy level beyond the nearest one asked for.
ENERGY_STEP_PENALTY = 0.5
#: Rank of the key when the key of the playing track or of the candidate is unknown.
UNKNOWN_KEY_RANK = 3


class PlaylistNotFound(NotFound):
    """``playlist_id`` names no playlist (404 ``Playlist not found``)."""

    def __init__(self, playlist_id: str) -> None:
        super().__init__("Playlist not found")
        self.detail = f"Playlist with ID {playlist_id} does not exist"

    def extra(self) -> dict[str, Any]:
        """``{"message": "Playlist with ID <id> does not exist"}``."""
        return {"message": self.detail}


def energy_of(row: Any) -> int | None:
    """The 0-10 energy level of a track: ``energy_level``, else its ``energy`` rounded
    when that lies on the same 0-10 scale (Taperoom's analyzer), else None."""
    if row["energy_level"] is not None:
        return int(row["energy_level"])
    energy = row["energy"]
    if energy is not None and 0 <= energy <= 10:
        return round(float(energy))
    return None


@dataclass(frozen=True)
class _Ranked:
    score: float
    title: str
    track: dict[str, Any]
    move: str | None
    reasons: list[str]


class SuggestionService:
    """Next-track suggestions.

    Parameters
    ----------
    db : sessionmaker
        Session factory of the library database.
    bpm_percent : float
        Largest tempo difference, per cent (``SUGGESTION_BPM_PERCENT``).
    """

    def __init__(self, db: sessionmaker[Session], *, bpm_percent: float) -> None:
        self.db = db
        self.bpm_percent = bpm_percent

    def suggest(self, track_id: str, *, energy: Energy | None = None, limit: int = 20,
                playlist_id: str | None = None) -> list[dict[str, Any]]:
        """Tracks that mix well after `track_id`, best first.

        Parameters
        ----------
        track_id : str
            The playing track.
        energy : {"up", "same", "down"}, optional
            Energy direction; any when omitted.
        limit : int
            Most suggestions returned.
        playlist_id : str, optional
            Only tracks of this playlist.

        Returns
        -------
        list of dict
            ``{"track": track object, "score": float (lower is better),
            "key_move": str or None, "reasons": [str]}``, reasons such as
            ``"8A → 9A: +1 on the Camelot wheel"``, ``"126 → 128 BPM (+1.6 %)"``,
            ``"energy 6 → 7"``.

        Raises
        ------
        NotFound
            Unknown track (:class:`~taperoom.library.tracks.TrackNotFound`) or
            playlist (:class:`PlaylistNotFound`).
        """
        cid = canonical_id(track_id)
        with self.db() as s:
            track = track_repo.get_track(s, cid) if cid else None
            if track is None:
                raise TrackNotFound(track_id)
            pid = None
            if playlist_id is not None:
                pid = canonical_id(playlist_id)
                if pid is None or not repo.playlist_exists(s, pid):
                    raise PlaylistNotFound(playlist_id)
            key, mode = track.musical_key, track.mode
            origin = ((key, mode) if key is not None and mode is not None
                      and key in range(12) and mode in (0, 1) else None)
            moves = ({(m.musical_key, m.mode): m for m in compatible_keys(*origin)}
                     if origin else None)
            bpm = track.bpm if track.bpm is not None and track.bpm > 0 else None
            rows = repo.candidates(
                s, track.id, keys=list(moves) if moves is not None else None,
                bpm_windows=bpm_windows(bpm, self.bpm_percent) if bpm else None,
                playlist_id=pid)
            ref_energy = energy_of({"energy_level": track.energy_level,
                                    "energy": track.energy})
        ranked = []
        for row in rows:
            item = self._rank(row, origin, moves, bpm, ref_energy, energy)
            if item is not None:
                ranked.append(item)
        ranked.sort(key=lambda r: (r.score, r.title, r.track["id"]))
        return [{"track": r.track, "score": round(r.score, 3),
                 "key_move": r.move, "reasons": r.reasons}
                for r in ranked[:limit]]

    def _rank(self, row: Any, origin: tuple[int, int] | None, moves: dict[Any, Any] | None,
              bpm: float | None, ref_energy: int | None, direction: Energy | None
              ) -> _Ranked | None:
        reasons: list[str] = []
        score = 0.0
        move = None
        if origin is not None and moves is not None:
            move = moves.get((row["musical_key"], row["mode"]))
            if move is None:
                return None
            reasons.append(move.describe(origin))
            score += move.rank
        else:
            score += UNKNOWN_KEY_RANK
        if bpm is not None:
            match = bpm_match(bpm, row["bpm"] or 0.0, self.bpm_percent)
            if match is None:
                return None
            reasons.append(match.describe(bpm, row["bpm"]))
            score += abs(match.delta_percent) / self.bpm_percent if self.bpm_percent else 0.0
        level = energy_of(row)
        if direction is not None and ref_energy is not None:
            if level is None:
                score += UNKNOWN_ENERGY_PENALTY
            else:
                step = level - ref_energy
                wanted = {"up": step > 0, "same": step == 0, "down": step < 0}[direction]
                if not wanted:
                    return None
                score += ENERGY_STEP_PENALTY * max(abs(step) - (0 if direction == "same" else 1),
                                                   0)
        if ref_energy is not None and level is not None:
            reasons.append(f"energy {ref_energy} → {level}")
        return _Ranked(score, (row["title"] or "").lower(), track_row_dict(row),
                       move.move if move is not None else None, reasons)
