"""SQL of next-track suggestions: the candidates that may follow a track in a DJ set.

The harmonic and tempo rules themselves are :mod:`taperoom.playlists.harmony`'s;
this module only narrows the tracks table to the keys and tempo windows it is
given, leaves out what must not be suggested (the track itself, missing tracks,
the tracks already played in a running session) and optionally keeps only the
tracks of one playlist.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import RowMapping
from sqlalchemy.orm import Session

from taperoom.library import models
from taperoom.library.repository.tracks import TRACK_API_COLUMNS

T = models.Track
P = models.Playlist
PT = models.PlaylistTrack

#: The playlist type of a DJ session's history (contract: ``type: session``).
SESSION_TYPE = "session"


def playlist_exists(session: Session, playlist_id: str) -> bool:
    """Whether a playlist has id `playlist_id`."""
    return session.scalar(sa.select(sa.literal(1)).where(P.id == playlist_id)) is not None


def played_in_active_sessions() -> sa.Select[Any]:
    """``SELECT track_id`` of the entries of every session not finalized (type
    ``session``, ``is_readonly`` false)."""
    return (sa.select(PT.track_id).join(P, P.id == PT.playlist_id)
            .where(P.type == SESSION_TYPE, P.is_readonly == False))  # noqa: E712


def active_session_track_ids(session: Session) -> set[str]:
    """Ids of the tracks played in a session not finalized yet."""
    return set(session.scalars(played_in_active_sessions()))


def candidates(session: Session, track_id: str, *,
               keys: Sequence[tuple[int, int]] | None,
               bpm_windows: Sequence[tuple[float, float]] | None,
               playlist_id: str | None = None) -> list[RowMapping]:
    """Tracks that may follow `track_id`: track objects (every API column).

    Parameters
    ----------
    session : Session
    track_id : str
        The track playing now (left out).
    keys : sequence of (int, int) or None
        ``(musical_key, mode)`` pairs a candidate's key must be one of; None
        leaves keys alone (the playing track's key is unknown).
    bpm_windows : sequence of (float, float) or None
        Inclusive tempo ranges a candidate's BPM must fall in (one of); None
        leaves tempos alone.
    playlist_id : str, optional
        Only the tracks of this playlist.

    Returns
    -------
    list of RowMapping
        Rows of :data:`~taperoom.library.repository.tracks.TRACK_API_COLUMNS`,
        never a missing track, the playing one or one played in an active session.
    """
    query = sa.select(*TRACK_API_COLUMNS).where(
        T.id != track_id, T.is_missing == False,  # noqa: E712
        T.id.not_in(played_in_active_sessions()))
    if keys is not None:
        query = query.where(sa.or_(sa.false(), *(sa.and_(T.musical_key == k, T.mode == m)
                                                 for k, m in keys)))
    if bpm_windows is not None:
        query = query.where(sa.or_(sa.false(), *(T.bpm.between(low, high)
                                                 for low, high in bpm_windows)))
    if playlist_id is not None:
        query = query.where(T.id.in_(sa.select(PT.track_id)
                                     .where(PT.playlist_id == playlist_id)))
    return list(session.execute(query.order_by(T.id)).mappings())
