"""The URL test of a station: connect briefly and say what the stream carries.

:func:`probe_stream_url` follows playlists and redirects as a recording would,
through the same URL policy, sniffs the first bytes (MP3 and ADTS headers, else
FFmpeg's probe) and answers the contract's ``connection_test`` object; network
failures are an answer (``success: false``), never an exception.
"""

from __future__ import annotations

import contextlib
import time
from typing import Any
from urllib.parse import urlsplit

import av
import httpx

from taperoom.recorder.capture.sources import (
    HLS_OPTIONS,
    MAX_PLAYLIST_HOPS,
    PLAYLIST_MAX_BYTES,
    is_adts,
    is_playlist,
    refusal_first,
)
from taperoom.recorder.capture.types import CaptureOptions
from taperoom.recorder.encode import FrameSync
from taperoom.recorder.hlsio import HlsOpener, check_hls_playlist
from taperoom.recorder.icy import (
    IcyDemuxer,
    http_client,
    is_hls_playlist,
    open_checked,
    parse_playlist,
)
from taperoom.recorder.urlpolicy import (
    FFMPEG_NO_PROTOCOLS,
    FFMPEG_RTMP_PROTOCOLS,
    HTTP_SCHEMES,
    UrlPolicy,
    UrlRefused,
)

#: Codec named by a response's ``Content-Type`` when FFmpeg cannot tell from the bytes.
CODEC_BY_TYPE = {
    "audio/mpeg": "mp3", "audio/mp3": "mp3", "audio/mpeg3": "mp3", "audio/x-mpeg": "mp3",
    "audio/aac": "aac", "audio/aacp": "aac", "audio/x-aac": "aac", "audio/mp4": "aac",
    "audio/ogg": "ogg", "application/ogg": "ogg", "audio/opus": "opus", "audio/flac": "flac",
}


def probe_stream_url(url: str, *, timeout: float = 10.0,
                     user_agent: str = CaptureOptions.user_agent,
                     policy: UrlPolicy | None = None) -> dict[str, Any]:
    """Connect to a stream briefly and say what it carries (the contract's URL test).

    Parameters
    ----------
    url : str
        Stream URL (any scheme :func:`record_stream` accepts).
    timeout : float
        Seconds allowed for the whole probe.
    user_agent : str
        ``User-Agent`` sent.
    policy : UrlPolicy, optional
        Applied to the URL and to everything it leads to, as in a recording; by
        default every non-public address is refused.

    Returns
    -------
    dict
        ``success`` (bool: audio was recognised), ``message`` (human-readable),
        ``content_type``, ``codec`` (``"mp3"``, ``"aac"``, FFmpeg's name or None),
        ``bitrate`` (kbit/s or None), ``sample_rate`` (Hz or None), ``channels``,
        ``icy_name``, ``status_code`` (HTTP status or None) and ``stream_url`` (the
        URL finally read, after playlists). Network errors never raise: they give
        ``success: False`` and the reason in ``message``.

    Raises
    ------
    UrlRefused
        The URL, a playlist entry, a redirect, an HLS entry or a destination
        address is outside `policy` (nothing outside it was opened; the answer does
        not depend on whether a refused local path exists).
    """
    info: dict[str, Any] = {"success": False, "message": "", "content_type": None,
                            "codec": None, "bitrate": None, "sample_rate": None,
                            "channels": None, "icy_name": None, "status_code": None,
                            "stream_url": url}
    policy = policy or UrlPolicy()
    deadline = time.monotonic() + timeout
    target, what = url, "stream URL"
    try:
        for _ in range(MAX_PLAYLIST_HOPS):
            target = policy.normalize(target, what=what)
            info["stream_url"] = target
            if urlsplit(target).scheme.lower() in HTTP_SCHEMES:
                nxt = _probe_http(target, info, deadline, user_agent, policy)
                if nxt is None:
                    break
                target, what = nxt, "playlist entry"
                if target.startswith("hls+"):
                    target = target[4:]
                    info["stream_url"] = target
                    _probe_ffmpeg(target, info, deadline, user_agent, policy, hls=True)
                    break
            else:
                target = policy.check_url(target, what=what)
                _probe_ffmpeg(target, info, deadline, user_agent, policy)
                break
    except UrlRefused:
        raise
    except httpx.TimeoutException:
        info["message"] = f"timed out after {timeout:g} s"
    except httpx.HTTPError as exc:
        info["message"] = f"connection failed: {exc}"
    except av.error.FFmpegError as exc:
        info["message"] = f"cannot open the stream: {exc.strerror or exc}"
    except Exception as exc:  # the probe never raises for what a server does
        info["message"] = f"{type(exc).__name__}: {exc}"
    if info["success"] and not info["message"]:
        parts = [str(info["codec"]).upper()]
        if info["bitrate"]:
            parts.append(f"{info['bitrate']} kbit/s")
        if info["sample_rate"]:
            parts.append(f"{info['sample_rate'] / 1000:g} kHz")
        if info["channels"]:
            parts.append({1: "mono", 2: "stereo"}.get(info["channels"],
                                                     f"{info['channels']} channels"))
        name = f" ({info['icy_name']})" if info["icy_name"] else ""
        info["message"] = "Stream is reachable: " + " ".join(parts) + name
    elif not info["success"] and not info["message"]:
        info["message"] = "no audio recognised in the stream"
    return info


def _probe_http(url: str, info: dict[str, Any], deadline: float, user_agent: str,
                policy: UrlPolicy) -> str | None:
    """Probe one HTTP URL; return the next URL to probe (a playlist entry, or
    ``"hls+<url>"`` for an HLS playlist) or None."""
    left = max(0.5, deadline - time.monotonic())
    with http_client(user_agent=user_agent, connect_timeout=left, read_timeout=left,
                     policy=policy) as client, \
            contextlib.closing(open_checked(client, url, policy=policy,
                                            headers={"Accept-Encoding": "identity"})) as resp:
        info["status_code"] = resp.status_code
        ctype = resp.headers.get("content-type", "").split(";")[0].strip().lower() or None
        info["content_type"] = ctype
        info["icy_name"] = resp.headers.get("icy-name")
        with contextlib.suppress(ValueError):
            br = resp.headers.get("icy-br", "").split(",")[0]
            info["bitrate"] = int(br) if br else None
        if resp.status_code >= 400:
            info["message"] = f"HTTP {resp.status_code} {resp.reason_phrase}".strip()
            return None
        try:
            metaint = int(resp.headers.get("icy-metaint", "0") or 0)
        except ValueError:
            metaint = 0
        demux = IcyDemuxer(metaint if metaint > 0 else None)
        data = bytearray()
        limit = PLAYLIST_MAX_BYTES
        for chunk in resp.iter_raw():
            for item in demux.feed(chunk):
                if isinstance(item, bytes):
                    data += item
            if _sniffed(bytes(data), info) or len(data) >= limit \
                    or time.monotonic() > deadline:
                break
        if not info["success"] and is_playlist(str(resp.url), ctype):
            text = bytes(data).decode("utf-8", "replace")
            if is_hls_playlist(text):
                check_hls_playlist(text, str(resp.url), policy)
                return "hls+" + str(resp.url)
            urls = parse_playlist(text, str(resp.url))
            if urls:
                return policy.first_allowed(urls, what="playlist entry")
            info["message"] = "the playlist names no stream"
            return None
        if not info["success"] and data:
            _probe_bytes(bytes(data), info)
    return None


def _sniffed(data: bytes, info: dict[str, Any]) -> bool:
    frames = FrameSync().feed(data)
    if frames:
        h = frames[0].header
        info.update(success=True, codec="mp3", sample_rate=h.sample_rate, channels=h.channels)
        info["bitrate"] = info["bitrate"] or h.bitrate_kbps
        return True
    if is_adts(data):
        pos = 0
        while data[pos] != 0xFF or (data[pos + 1] & 0xF6) != 0xF0:
            pos += 1
        rates = (96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000,
                 11025, 8000, 7350)
        sr_index = (data[pos + 2] >> 2) & 0x0F
        channels = ((data[pos + 2] & 0x01) << 2) | (data[pos + 3] >> 6)
        info.update(success=True, codec="aac",
                    sample_rate=rates[sr_index] if sr_index < len(rates) else None,
                    channels=channels or None)
        return True
    return False


def _probe_bytes(data: bytes, info: dict[str, Any]) -> None:
    """Let FFmpeg identify a stream from its first bytes."""
    import io

    try:
        with av.open(io.BytesIO(data), "r",
                     options={"protocol_whitelist": FFMPEG_NO_PROTOCOLS}) as c:
            if c.streams.audio:
                s = c.streams.audio[0]
                info.update(success=True, codec=s.codec_context.name, sample_rate=s.rate,
                            channels=s.channels)
                if s.bit_rate and not info["bitrate"]:
                    info["bitrate"] = s.bit_rate // 1000
    except av.error.FFmpegError:
        info["codec"] = CODEC_BY_TYPE.get(info["content_type"] or "")


def _probe_ffmpeg(url: str, info: dict[str, Any], deadline: float, user_agent: str,
                  policy: UrlPolicy, *, hls: bool = False) -> None:
    """Let FFmpeg open an RTMP URL, or an HLS playlist with every fetch through `policy`."""
    left = max(1.0, deadline - time.monotonic())
    options = {"user_agent": user_agent, "rw_timeout": str(int(left * 1e6)),
               "protocol_whitelist": FFMPEG_RTMP_PROTOCOLS}
    with contextlib.ExitStack() as stack:
        opener = None
        if hls:
            opener = HlsOpener(policy, user_agent=user_agent, connect_timeout=left,
                               read_timeout=left)
            stack.callback(opener.close)
            options.update(HLS_OPTIONS)
        stack.enter_context(refusal_first(opener))
        c = stack.enter_context(av.open(url, "r", format="hls" if hls else None,
                                        options=options, timeout=(left, left),
                                        io_open=opener))
        info["content_type"] = info["content_type"] or c.format.name
        if not c.streams.audio:
            info["message"] = "no audio stream"
            return
        s = c.streams.audio[0]
        info.update(success=True, codec=s.codec_context.name, sample_rate=s.rate,
                    channels=s.channels)
        br = s.bit_rate or c.bit_rate
        if br and not info["bitrate"]:
            info["bitrate"] = int(br) // 1000
