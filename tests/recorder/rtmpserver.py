"""Test peer: a minimal RTMP server on 127.0.0.1 that plays MP3 frames live.

It speaks the part of RTMP (Adobe RTMP specification 1.0, sections 5 and 7, and
AMF0) that a player needs: the plain handshake (C0/C1/C2 answered by S0/S1/S2
with a zero version, so clients skip the digest check), chunked messages in both
directions, ``connect`` / ``createStream`` / ``play`` commands answered with
``_result`` and ``onStatus NetStream.Play.Start``, and then audio messages, one
MP3 frame each as an FLV audio tag (``0x2F``: MP3, 44 kHz, 16 bit, stereo),
timestamped in milliseconds and sent at real time. FFmpeg's RTMP client (inside
PyAV) is the client it is tested against.

Every connection starts at the first frame of the material (no shared station
clock). ``drop_after`` closes each connection after that many seconds of audio,
to test reconnection. ``plays`` lists the play paths asked for, one per
connection, and ``frames_sent`` counts the audio messages of each connection.

Use::

    with RtmpServer(mp3_frames, frame_seconds) as server:
        url = server.url("live/radio")        # rtmp://127.0.0.1:PORT/live/radio
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import struct
import threading
import time
from typing import Any

HANDSHAKE_SIZE = 1536
#: Chunk size the server announces and sends with (bytes of payload per chunk).
OUT_CHUNK = 4096
#: FLV audio tag header byte of MP3, 44 kHz, 16-bit, stereo (FLV spec, "AUDIODATA").
FLV_MP3_STEREO_44K = 0x2F

# message types (RTMP spec 5.4 and 7.1)
SET_CHUNK_SIZE, ACK, USER_CONTROL, WINDOW_ACK, PEER_BW = 1, 3, 4, 5, 6
AUDIO, DATA_AMF0, COMMAND_AMF0 = 8, 18, 20


# -- AMF0 ---------------------------------------------------------------------------------


def amf_encode(*values: Any) -> bytes:
    """AMF0 encoding of numbers, booleans, strings, None and dicts (as objects)."""
    out = bytearray()
    for v in values:
        if isinstance(v, bool):
            out += b"\x01" + (b"\x01" if v else b"\x00")
        elif isinstance(v, int | float):
            out += b"\x00" + struct.pack(">d", float(v))
        elif isinstance(v, str):
            raw = v.encode()
            out += b"\x02" + struct.pack(">H", len(raw)) + raw
        elif v is None:
            out += b"\x05"
        elif isinstance(v, dict):
            out += b"\x03"
            for k, item in v.items():
                key = k.encode()
                out += struct.pack(">H", len(key)) + key + amf_encode(item)
            out += b"\x00\x00\x09"
        else:
            raise TypeError(f"cannot AMF0-encode {type(v).__name__}")
    return bytes(out)


def amf_ecma_array(values: dict[str, Any]) -> bytes:
    """AMF0 ECMA ("mixed") array, the form FFmpeg reads ``onMetaData`` in."""
    out = bytearray(b"\x08" + struct.pack(">I", len(values)))
    for k, item in values.items():
        key = k.encode()
        out += struct.pack(">H", len(key)) + key + amf_encode(item)
    return bytes(out + b"\x00\x00\x09")


def amf_decode(data: bytes) -> list[Any]:
    """Every AMF0 value of `data` (numbers, booleans, strings, null, objects, ECMA arrays)."""
    values: list[Any] = []
    pos = 0

    def value() -> Any:
        nonlocal pos
        marker = data[pos]
        pos += 1
        if marker == 0x00:
            pos += 8
            return struct.unpack(">d", data[pos - 8:pos])[0]
        if marker == 0x01:
            pos += 1
            return bool(data[pos - 1])
        if marker == 0x02:
            n = struct.unpack(">H", data[pos:pos + 2])[0]
            pos += 2 + n
            return data[pos - n:pos].decode("utf-8", "replace")
        if marker in (0x05, 0x06):
            return None
        if marker in (0x03, 0x08):
            if marker == 0x08:
                pos += 4  # ECMA array count (advisory)
            obj = {}
            while data[pos:pos + 3] != b"\x00\x00\x09":
                n = struct.unpack(">H", data[pos:pos + 2])[0]
                pos += 2 + n
                key = data[pos - n:pos].decode("utf-8", "replace")
                obj[key] = value()
            pos += 3
            return obj
        raise ValueError(f"AMF0 marker {marker:#x} not supported")

    while pos < len(data):
        values.append(value())
    return values


# -- chunk stream -------------------------------------------------------------------------


class _ChunkReader:
    """Reassembles the client's chunked messages (RTMP spec 5.3)."""

    def __init__(self, reader: asyncio.StreamReader) -> None:
        self.reader = reader
        self.chunk_size = 128
        self.streams: dict[int, dict[str, Any]] = {}

    async def message(self) -> tuple[int, int, bytes]:
        """The next complete message: (type, message stream id, payload)."""
        r = self.reader
        while True:
            first = (await r.readexactly(1))[0]
            fmt, csid = first >> 6, first & 0x3F
            if csid == 0:
                csid = 64 + (await r.readexactly(1))[0]
            elif csid == 1:
                b = await r.readexactly(2)
                csid = 64 + b[0] + 256 * b[1]
            st = self.streams.setdefault(csid, {"length": 0, "type": 0, "sid": 0,
                                                "buf": bytearray(), "ext": False})
            if fmt <= 2:
                head = await r.readexactly((11, 7, 3)[fmt])
                ts = int.from_bytes(head[0:3], "big")
                if fmt <= 1:
                    st["length"] = int.from_bytes(head[3:6], "big")
                    st["type"] = head[6]
                if fmt == 0:
                    st["sid"] = int.from_bytes(head[7:11], "little")
                st["ext"] = ts == 0xFFFFFF
                if st["ext"]:
                    await r.readexactly(4)
            elif st["ext"]:
                await r.readexactly(4)
            n = min(self.chunk_size, st["length"] - len(st["buf"]))
            st["buf"] += await r.readexactly(n)
            if len(st["buf"]) >= st["length"]:
                payload = bytes(st["buf"])
                st["buf"] = bytearray()
                if st["type"] == SET_CHUNK_SIZE:
                    self.chunk_size = struct.unpack(">I", payload[:4])[0] & 0x7FFFFFFF
                    continue
                return st["type"], st["sid"], payload


class _ChunkWriter:
    def __init__(self, writer: asyncio.StreamWriter) -> None:
        self.writer = writer
        self.chunk_size = 128

    def send(self, csid: int, mtype: int, payload: bytes, *, sid: int = 0, ts: int = 0) -> None:
        """Write one message as fmt-0 chunk plus fmt-3 continuations."""
        ext = ts >= 0xFFFFFF
        head = bytes([csid]) + min(ts, 0xFFFFFF).to_bytes(3, "big") \
            + len(payload).to_bytes(3, "big") + bytes([mtype]) + sid.to_bytes(4, "little")
        extra = ts.to_bytes(4, "big") if ext else b""
        out = bytearray(head + extra)
        for i in range(0, max(len(payload), 1), self.chunk_size):
            if i:
                out += bytes([0xC0 | csid]) + extra
            out += payload[i:i + self.chunk_size]
        self.writer.write(bytes(out))

    def set_chunk_size(self, size: int) -> None:
        self.send(2, SET_CHUNK_SIZE, struct.pack(">I", size))
        self.chunk_size = size


# -- server -------------------------------------------------------------------------------


class RtmpServer:
    """An RTMP server in a background thread, playing `frames` (MP3) on every stream.

    Parameters
    ----------
    frames : list of bytes
        MP3 frames (44.1 kHz stereo), looped.
    frame_seconds : float
        Duration of one frame (1152 / 44100 s).
    drop_after : float, optional
        Close each connection after this many seconds of audio.
    """

    def __init__(self, frames: list[bytes], frame_seconds: float, *,
                 drop_after: float | None = None) -> None:
        self.frames = frames
        self.frame_seconds = frame_seconds
        self.drop_after = drop_after
        self.plays: list[str] = []
        self.frames_sent: list[int] = []
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = int(s.getsockname()[1])
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True,
                                        name="rtmp-server")
        self._server: asyncio.AbstractServer | None = None

    def url(self, path: str) -> str:
        """``rtmp://127.0.0.1:PORT/<path>`` (``app/playpath``)."""
        return f"rtmp://127.0.0.1:{self.port}/{path.lstrip('/')}"

    def __enter__(self) -> RtmpServer:
        self._thread.start()
        self._server = asyncio.run_coroutine_threadsafe(
            asyncio.start_server(self._client, "127.0.0.1", self.port), self._loop).result(10)
        return self

    def __exit__(self, *exc: object) -> None:
        async def close() -> None:
            if self._server is not None:
                self._server.close()
            for task in asyncio.all_tasks():
                if task is not asyncio.current_task():
                    task.cancel()

        asyncio.run_coroutine_threadsafe(close(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        play: asyncio.Task[None] | None = None
        try:
            c0c1 = await reader.readexactly(1 + HANDSHAKE_SIZE)
            s1 = struct.pack(">I", int(time.monotonic() * 1000) & 0xFFFFFFFF) + bytes(4) \
                + os.urandom(HANDSHAKE_SIZE - 8)
            writer.write(b"\x03" + s1 + c0c1[1:])
            await writer.drain()
            await reader.readexactly(HANDSHAKE_SIZE)  # C2
            chunks, out = _ChunkReader(reader), _ChunkWriter(writer)
            while True:
                mtype, _sid, payload = await chunks.message()
                if mtype != COMMAND_AMF0:
                    continue  # acknowledgements, user control, window size
                args = amf_decode(payload)
                name, tid = args[0], args[1] if len(args) > 1 else 0
                if name == "connect":
                    out.send(2, WINDOW_ACK, struct.pack(">I", 2_500_000))
                    out.send(2, PEER_BW, struct.pack(">IB", 2_500_000, 2))
                    out.set_chunk_size(OUT_CHUNK)
                    out.send(3, COMMAND_AMF0, amf_encode(
                        "_result", tid, {"fmsVer": "FMS/3,5,7,7009", "capabilities": 31},
                        {"level": "status", "code": "NetConnection.Connect.Success",
                         "description": "Connection succeeded.", "objectEncoding": 0}))
                elif name == "createStream":
                    out.send(3, COMMAND_AMF0, amf_encode("_result", tid, None, 1))
                elif name == "play" and play is None:
                    self.plays.append(str(args[3]) if len(args) > 3 else "")
                    out.send(2, USER_CONTROL, struct.pack(">HI", 0, 1))  # StreamBegin 1
                    out.send(5, COMMAND_AMF0, amf_encode(
                        "onStatus", 0, None,
                        {"level": "status", "code": "NetStream.Play.Start",
                         "description": "Started playing."}), sid=1)
                    play = asyncio.create_task(self._play(out, writer))
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.CancelledError):
            pass
        finally:
            if play is not None:
                play.cancel()
                with contextlib.suppress(asyncio.CancelledError, ConnectionError):
                    await play
            writer.close()

    async def _play(self, out: _ChunkWriter, writer: asyncio.StreamWriter) -> None:
        index = len(self.frames_sent)
        self.frames_sent.append(0)
        # audio only: FFmpeg builds its FLV header from this and does not wait for video
        out.send(5, DATA_AMF0, amf_encode("onMetaData") + amf_ecma_array({
            "audiocodecid": 2, "audiosamplerate": 44100, "audiosamplesize": 16,
            "stereo": True, "audiodatarate": 128}), sid=1)
        start = time.monotonic()
        k = 0
        while self.drop_after is None or k * self.frame_seconds < self.drop_after:
            ahead = start + k * self.frame_seconds - time.monotonic()
            if ahead > 0:
                await asyncio.sleep(ahead)
            frame = self.frames[k % len(self.frames)]
            out.send(4, AUDIO, bytes([FLV_MP3_STEREO_44K]) + frame, sid=1,
                     ts=round(k * self.frame_seconds * 1000))
            await writer.drain()
            k += 1
            self.frames_sent[index] = k
        writer.close()
