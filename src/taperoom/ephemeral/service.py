"""Use cases of the ephemeral app, between the HTTP router and the disk store."""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import math
import os
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass

from pydantic import TypeAdapter, ValidationError
from starlette.concurrency import run_in_threadpool

from taperoom.audio import wav
from taperoom.audio.waveform import minmax_peaks, normalise_peaks
from taperoom.ephemeral.intake import Conversion, Intake
from taperoom.ephemeral.names import decoded_again
from taperoom.ephemeral.schemas import (
    DegradePublic,
    StatusPublic,
    TrackPublic,
    TrackStatsPublic,
    TrackWearModelPublic,
    WaveformPointPublic,
    WearModelPublic,
)
from taperoom.ephemeral.settings import EphemeralSettings
from taperoom.ephemeral.store import EphemeralStore, Meta, wear_model_in
from taperoom.ephemeral.wear import WEAR_MODELS, description_of
from taperoom.errors import (
    Busy,
    Forbidden,
    InvalidInput,
    MediaError,
    NotFound,
    TaperoomError,
    Unauthorized,
)
from taperoom.events import Event, EventBus, WearPlayed

log = logging.getLogger(__name__)

#: Length of one ``/stream/<f>/chunk/<i>`` chunk, in seconds (the newer original's CHUNK).
CHUNK_SECONDS = 5.0

_WAVEFORM = TypeAdapter(list[WaveformPointPublic])


def overall_degradation(counts: list[int], rate_percent: float) -> float:
    """``min(mean(play counts) * DEGRADATION_RATE, 100)`` in percent (the contract's formula)."""
    if not counts:
        return 0.0
    return min(sum(counts) / len(counts) * rate_percent, 100.0)


def parse_segment_index(body: bytes) -> int:
    """Read ``{"segment_index": int}`` from a ``/degrade`` request body.

    Raises
    ------
    InvalidInput
        Not JSON (or nested deeper than the parser's recursion limit), not a JSON
        object, no ``segment_index`` ("segment_index required"), or not an integer
        ("Invalid segment index").
    """
    try:
        data = json.loads(body or b"null")
    except (ValueError, UnicodeDecodeError):
        raise InvalidInput("Request body must be JSON: {\"segment_index\": <int>}") from None
    except RecursionError:
        raise InvalidInput("Request body is nested too deeply: send {\"segment_index\": <int>}"
                           ) from None
    if not isinstance(data, dict) or data.get("segment_index") is None:
        raise InvalidInput("segment_index required")
    index = data["segment_index"]
    if isinstance(index, bool) or not isinstance(index, int):
        raise InvalidInput("Invalid segment index")
    return index


@dataclass(frozen=True)
class StreamPlan:
    """What ``GET /stream/<f>?degrade=1`` will send.

    Attributes
    ----------
    info : WavInfo
        Layout of the track.
    start_frame : int
        First frame sent.
    first_segment : int
        Segment holding `start_frame`.
    header : bytes
        WAV header for the frames from `start_frame` to the end.
    """

    info: wav.WavInfo
    start_frame: int
    first_segment: int
    header: bytes

    @property
    def content_length(self) -> int:
        """Bytes of the whole response (header, frames, pad byte)."""
        data = (self.info.n_frames - self.start_frame) * self.info.block_align
        return len(self.header) + data + (data & 1)


class EphemeralService:
    """The ephemeral app's operations; each answers a body of the contract.

    Parameters
    ----------
    settings : EphemeralSettings
        Folders and ``DEGRADATION_RATE`` (shown by :meth:`status`), ``ADMIN_TOKEN``,
        ``WAVEFORM_POINTS`` and ``STREAM_PREBUFFER``.
    store : EphemeralStore
        The tracks on disk, their metadata and locks.
    intake : Intake, optional
        Converts files of other formats dropped into ``AUDIO_DIR`` to WAV tracks
        at each scan; without it only WAV files are tracks.
    bus : EventBus, optional
        Where each counted play is announced (:attr:`~taperoom.events.Event.WEAR_PLAYED`,
        sent in the thread that counted it); a private bus when omitted.
    """

    def __init__(self, settings: EphemeralSettings, store: EphemeralStore,
                 intake: Intake | None = None, bus: EventBus | None = None) -> None:
        self.settings = settings
        self.store = store
        self.intake = intake
        self.bus = bus if bus is not None else EventBus()

    # -- names -----------------------------------------------------------

    def resolve(self, filename: str) -> str:
        """The track a request names: `filename`, or its twice-decoded form.

        Tone.js 14.8 encodes a file name twice, so a request for ``My Song.wav``
        arrives as ``My%20Song.wav``. When no file has the once-decoded name but
        one has the name decoded again (:func:`~taperoom.ephemeral.names.decoded_again`),
        that one is meant. Both candidates are confined to ``AUDIO_DIR`` by
        :meth:`EphemeralStore.path_of`, so ``..%252F`` stays outside. Names without
        ``%`` are returned at once.

        Returns
        -------
        str
            The name to use; `filename` itself when neither exists (the caller then
            answers its own 404).
        """
        again = decoded_again(filename)
        if again is None or self.store.exists(filename) or not self.store.exists(again):
            return filename
        return again

    # -- catalogue -------------------------------------------------------

    def status(self) -> StatusPublic:
        """Body of ``GET /``."""
        return StatusPublic(
            status="running",
            service="Ephemeral Audio Decay System",
            audio_dir=str(self.settings.audio_dir),
            metadata_dir=str(self.settings.metadata_dir),
            degradation_rate=self.settings.degradation_rate,
        )

    def convert_new(self) -> list[Conversion]:
        """Convert the files of other formats in ``AUDIO_DIR`` to WAV tracks (once each)."""
        return self.intake.convert_pending() if self.intake is not None else []

    def scan(self) -> list[str]:
        """Convert new files of other formats, then create metadata for every readable
        WAV file; return their names (sorted)."""
        self.convert_new()
        names = []
        for name in self.store.list_filenames():
            if self.store.try_info(name) is None:
                continue
            try:
                self.store.ensure_meta(name)
            except TaperoomError as exc:
                log.warning("skipping %s: %s", name, exc)
                continue
            names.append(name)
        return names

    def tracks(self) -> list[TrackPublic]:
        """Body of ``GET /tracks``: every readable track, sorted by file name.

        Files dropped into ``AUDIO_DIR`` appear at the next call; removed ones
        disappear; unreadable ones are logged once and left out.
        """
        out = []
        for name in self.scan():
            meta = self.store.load_meta(name)
            if meta is None:
                continue
            out.append(TrackPublic(
                filename=name,
                title=meta["title"],
                duration=meta["duration"],
                overall_degradation=overall_degradation(meta["segment_play_counts"],
                                                        self.settings.degradation_rate),
                total_streams=meta.get("total_streams", 0),
                total_chunks=math.ceil(meta["duration"] / CHUNK_SECONDS),
            ))
        return out

    def _meta(self, filename: str) -> Meta:
        filename = self.resolve(filename)
        try:
            self.store.path_of(filename)
        except NotFound:
            raise NotFound("Track not found") from None
        if self.store.try_info(filename) is None:
            raise NotFound("Track not found")
        return self.store.ensure_meta(filename)

    def stats(self, filename: str) -> TrackStatsPublic:
        """Body of ``GET /stats/<f>``.

        A hand-edited metadata file whose ``segment_duration`` is not a number or
        whose ``created_at`` is not a string shows ``SEGMENT_DURATION`` and null
        instead (its counts still fit the track, so it is kept).
        """
        meta = self._meta(filename)
        counts = meta["segment_play_counts"]
        segment_duration = meta.get("segment_duration")
        if isinstance(segment_duration, bool) or not isinstance(segment_duration, int | float):
            segment_duration = self.settings.segment_duration
        created_at = meta.get("created_at")
        return TrackStatsPublic(
            filename=meta["filename"],
            title=meta["title"],
            duration=meta["duration"],
            total_segments=meta["total_segments"],
            segment_duration=segment_duration,
            segment_play_counts=counts,
            overall_degradation=overall_degradation(counts, self.settings.degradation_rate),
            total_streams=meta.get("total_streams", 0),
            created_at=created_at if isinstance(created_at, str) else None,
        )

    # -- wear ------------------------------------------------------------

    def degrade(self, filename: str, index: int) -> DegradePublic:
        """Body of ``POST /degrade/<f>``: wear segment `index` once.

        An unknown or unreadable track is 404 "Track not found", as in the contract.
        """
        try:
            try:
                count = self._play(filename, index)
            except NotFound:
                again = self.resolve(filename)
                if again == filename:
                    raise
                count = self._play(again, index)
        except (NotFound, MediaError):
            raise NotFound("Track not found") from None
        return DegradePublic(success=True, segment_index=index, play_count=count)

    # -- wear models -----------------------------------------------------

    def wear_models(self) -> list[WearModelPublic]:
        """Body of ``GET /wear-models``: every model, ``WEAR_MODEL``'s marked default."""
        return [WearModelPublic(name=name, description=description_of(model),
                                default=name == self.settings.wear_model)
                for name, model in WEAR_MODELS.items()]

    def track_wear_model(self, filename: str) -> TrackWearModelPublic:
        """The wear model of one track (404 "Track not found" for an unknown track)."""
        meta = self._meta(filename)
        own = wear_model_in(meta)
        return TrackWearModelPublic(filename=meta["filename"],
                                    wear_model=own or self.settings.wear_model,
                                    own=own is not None)

    def set_wear_model(self, filename: str, wear_model: str | None) -> TrackWearModelPublic:
        """Give a track its own wear model, or (None) ``WEAR_MODEL``'s again.

        Every later play of the track uses it; what earlier plays wore stays.

        Raises
        ------
        NotFound
            No such track ("Track not found").
        InvalidInput
            `wear_model` is not a name of ``GET /wear-models``.
        Busy
            Locks not granted within ``LOCK_TIMEOUT``.
        """
        if wear_model is not None and wear_model not in WEAR_MODELS:
            raise InvalidInput(f"Unknown wear model {wear_model!r}; known: "
                               f"{', '.join(WEAR_MODELS)}")
        meta = self._meta(filename)
        self.store.set_wear_model(meta["filename"], wear_model)
        return self.track_wear_model(meta["filename"])

    def _play(self, filename: str, index: int) -> int:
        """Wear segment `index` once (:meth:`EphemeralStore.degrade`) and announce the
        counted play on the bus; its new play count."""
        count = self.store.degrade(filename, index)
        self.bus.send(Event.WEAR_PLAYED, dict(WearPlayed(
            filename=filename, segment_index=index, play_count=count,
            counted_at=time.time())))
        return count

    def check_admin(self, token: str | None) -> None:
        """Accept only the configured ``ADMIN_TOKEN`` (compared in constant time).

        Parameters
        ----------
        token : str or None
            The bearer token the client sent (RFC 6750 §2.1), None when it sent none.

        Raises
        ------
        Forbidden
            No ``ADMIN_TOKEN`` is configured, so admin routes are off.
        Unauthorized
            The token is missing or wrong.
        """
        expected = self.settings.admin_token.get_secret_value()
        if not expected:
            raise Forbidden("Admin routes are disabled: set ADMIN_TOKEN")
        given = (token or "").strip()
        if not given or not hmac.compare_digest(given.encode(), expected.encode()):
            raise Unauthorized("Missing or wrong admin token")

    def reset(self, filename: str) -> TrackStatsPublic:
        """Restore a track from its pristine copy; return its new stats."""
        self._meta(filename)
        self.store.reset(filename)
        return self.stats(filename)

    # -- audio out -------------------------------------------------------

    def stream_path(self, filename: str) -> os.PathLike[str]:
        """Path of the file served by ``GET /stream/<f>`` (404 when missing)."""
        return self.store.path_of(self.resolve(filename))

    def count_stream(self, filename: str) -> None:
        """Count one stream start of `filename`, if it is a readable track."""
        filename = self.resolve(filename)
        if self.store.try_info(filename) is not None:
            self.store.add_stream(filename)

    def chunk(self, filename: str, index: int) -> bytes:
        """``CHUNK_SECONDS`` of audio from chunk `index`, as a complete WAV file.

        Raises
        ------
        NotFound
            No such track.
        InvalidInput
            `index` outside ``[0, total_chunks)``.
        """
        filename = self.resolve(filename)
        self.store.path_of(filename)
        info = self.store.info(filename)
        total = math.ceil(info.duration / CHUNK_SECONDS)
        if not 0 <= index < total:
            raise InvalidInput("Invalid chunk index")
        per = int(CHUNK_SECONDS * info.sample_rate)
        fd = os.open(self.store.path_of(filename), os.O_RDONLY)
        try:
            raw = wav.read_raw(fd, info, index * per, per)
        finally:
            os.close(fd)
        n = len(raw) // info.block_align
        return wav.header_for(info, n) + raw + (b"\x00" if len(raw) & 1 else b"")

    def waveform(self, filename: str) -> list[WaveformPointPublic]:
        """``WAVEFORM_POINTS`` ``{"min", "max"}`` peaks of the mono mix, normalised.

        Cached in ``METADATA_DIR/waveforms/<key>.json`` (:meth:`EphemeralStore.waveform_path`);
        the cache is dropped when the track's metadata is recreated, and a cache
        that is not a list of peaks is computed again.
        """
        filename = self.resolve(filename)
        self.store.path_of(filename)
        info = self.store.info(filename)
        self.store.ensure_meta(filename)
        cache = self.store.waveform_path(filename)
        try:
            return _WAVEFORM.validate_json(cache.read_bytes())
        except (OSError, ValidationError):
            pass
        points = self._compute_peaks(filename, info)
        from taperoom.fslock import atomic_write

        atomic_write(cache, json.dumps(points).encode(), fsync=False)
        return [WaveformPointPublic(min=p["min"], max=p["max"]) for p in points]

    def _compute_peaks(self, filename: str, info: wav.WavInfo) -> list[dict[str, float]]:
        import numpy as np

        n_points = self.settings.waveform_points
        spp = max(1, info.n_frames // n_points)
        total = min(n_points, info.n_frames // spp)
        batch = max(1, (1 << 20) // spp)  # points per read, about a million frames
        mins: list[np.ndarray] = []
        maxs: list[np.ndarray] = []
        fd = os.open(self.store.path_of(filename), os.O_RDONLY)
        try:
            for first in range(0, total, batch):
                k = min(batch, total - first)
                y = wav.read_frames(fd, info, first * spp, k * spp)
                lo, hi = minmax_peaks(y, n_points=k)
                mins.append(lo)
                maxs.append(hi)
        finally:
            os.close(fd)
        lo_all, hi_all = normalise_peaks(np.concatenate(mins), np.concatenate(maxs))
        return [{"min": float(a), "max": float(b)} for a, b in zip(lo_all, hi_all, strict=True)]

    def plan_worn_stream(self, filename: str, start_seconds: float) -> StreamPlan:
        """Prepare ``GET /stream/<f>?start=<s>&degrade=1``.

        Raises
        ------
        NotFound
            No such track.
        InvalidInput
            `start_seconds` not finite, negative or past the end. It is compared
            with the duration before it is turned into a frame number, so no value
            (``1e308``, ``inf``, ``nan``) can overflow.
        """
        filename = self.resolve(filename)
        self._meta(filename)
        info = self.store.info(filename)
        if not math.isfinite(start_seconds) or start_seconds < 0:
            raise InvalidInput("start must be a number of seconds >= 0")
        past_end = InvalidInput(f"start is past the end of the track ({info.duration:.3f} s)")
        if start_seconds >= info.duration:
            raise past_end
        start_frame = math.floor(start_seconds * info.sample_rate)
        if start_frame >= info.n_frames:
            raise past_end
        return StreamPlan(info, start_frame, self.store.segment_of_frame(info, start_frame),
                          wav.header_for(info, info.n_frames - start_frame))

    async def worn_stream(self, filename: str, plan: StreamPlan) -> AsyncIterator[bytes]:
        """Send a track from a position at real time, wearing each segment once sent.

        Yields the WAV header, then one segment at a time in its current state.
        Segment ``k`` (counting from the first sent) is not sent before
        ``t0 + (audio seconds sent so far) - STREAM_PREBUFFER``, so a client that
        reads faster than real time still wears at most real time plus the
        prebuffer. A segment is worn only after it was handed to the connection; a
        client that disconnects stops the generator and so the wear. A segment
        whose lock cannot be had is sent without wear (logged), as the seed says.
        """
        info = plan.info
        filename = self.resolve(filename)
        yield plan.header
        t0 = time.monotonic()
        sent_seconds = 0.0
        total = self.store.total_segments(info)
        path = self.store.path_of(filename)
        fd = os.open(path, os.O_RDONLY)
        try:
            for index in range(plan.first_segment, total):
                due = t0 + sent_seconds - self.settings.stream_prebuffer
                delay = due - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
                start, end = self.store.segment_frames(info, index)
                start = max(start, plan.start_frame)
                raw = await run_in_threadpool(wav.read_raw, fd, info, start, end - start)
                if index == total - 1 and len(raw) & 1:
                    raw += b"\x00"
                yield raw
                sent_seconds += (end - start) / info.sample_rate
                try:
                    await run_in_threadpool(self._play, filename, index)
                except Busy as exc:
                    log.warning("stream of %s: segment %d not worn: %s", filename, index, exc)
        finally:
            os.close(fd)
