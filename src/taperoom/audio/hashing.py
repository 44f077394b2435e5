"""Content hashes of audio files: tag-independent, screening, and whole-file.

:func:`audio_hash` identifies a recording: it hashes the compressed audio
packets of the first audio stream as the container's demuxer hands them out,
so tags, cover art, padding, chunk order and the container's own bookkeeping
(Ogg page numbers and CRCs, MP4 chunk offsets, the MP3 Xing/Info frame) do not
count, and any change to the coded audio does.

Why packets and not decoded PCM: decoding costs several times more CPU than
demuxing (on the shared corpus with PyAV: 4.8 times overall, from 1.7 times for
AIFF to 13 times for Opus, more with slower codecs or when the output must be
converted to one sample format), and it would add nothing for finding
duplicates, because the packets of one encoder output are byte-identical in
every file that carries it, however often the file is re-tagged or re-muxed.
The flip side is that two encodings of the same recording hash differently,
which is what a DJ library wants (a 128 kbit/s MP3 is not a duplicate of the
FLAC it came from).

What stays out of the hash, verified on the shared corpus by rewriting tags
with mutagen, appending tags by hand and re-muxing with PyAV (see
``tests/audio/test_hashing.py``):

- MP3: ID3v2 at the start and ID3v1 at the end (skipped by FFmpeg), the
  Xing/Info/VBRI frame (FFmpeg parses it for the duration and does not hand it
  out), and APEv2, Lyrics3 or ID3v2 tags appended at the end or junk between
  frames (FFmpeg's MP3 parser hands those out as packets of their own: they are
  cut off before demuxing, and packets without an MPEG frame sync are skipped).
- FLAC: all metadata blocks (``STREAMINFO`` becomes codec extradata;
  ``VORBIS_COMMENT``, ``PICTURE``, ``PADDING`` are skipped); tags appended after
  the last frame, which FFmpeg would glue to that frame, are cut off first.
- Monkey's Audio, WavPack, Musepack, TAK: the APEv2 tag at the end (cut off
  first; FFmpeg glues it to the last Monkey's Audio frame).
- Ogg Vorbis/Opus: the header packets (identification, comment with the tags,
  setup) are consumed by the demuxer as codec extradata and never handed out,
  so a longer comment that moves every later page and renumbers it changes
  nothing.
  A chained file (links one after another, RFC 3533 section 4) hashes the
  data packets of every link, as FFmpeg hands them out on its first stream.
- MP4: every atom except the samples in ``mdat``.
- WAV/AIFF: every chunk except the sample bytes of ``data``/``SSND``.

How: :func:`audio_hash_demuxed` is the reference, demuxing with PyAV, where
most of the time goes to creating a Python object per packet. :func:`audio_hash`
gives the same digest by walking the container instead for WAV/RF64, AIFF/AIFC,
FLAC, MPEG audio, Ogg Vorbis/Opus and single-track AAC/ALAC MP4
(:mod:`taperoom.audio.containers`: each walker replays what the FFmpeg demuxer,
and for raw streams its parser, does, and steps aside for anything it does not
vouch for); :func:`audio_hash_method` also says which way was taken. Errors
(missing, empty, truncated beyond use, no audio) always come from demuxing.

:func:`quick_hash` is a cheap screening hash over the file size and its first
and last 64 KiB; :func:`raw_hash` hashes every byte of the file.

References: Y. Collet, *xxHash* XXH3 (https://xxhash.com); FFmpeg
``libavformat`` demuxers ``mp3dec.c``, ``flacdec.c``, ``oggdec.c``, ``mov.c``,
``wavdec.c``, ``aiffdec.c``.
"""

from __future__ import annotations

import os
import stat
import struct
from pathlib import Path

import av
import av.error
import xxhash

from taperoom.audio.containers import FileView, Unsupported, audio_ranges, tail_tags_start
from taperoom.audio.demux import demux_packets
from taperoom.errors import MediaError

__all__ = ["DEMUX", "audio_hash", "audio_hash_demuxed", "audio_hash_method", "quick_hash",
           "raw_hash"]

#: Method name :func:`audio_hash_method` reports for files hashed by demuxing.
DEMUX = "demux"

#: Bytes of the file's head and tail that :func:`quick_hash` reads.
QUICK_CHUNK = 64 * 1024

#: Read size of :func:`raw_hash`.
RAW_CHUNK = 1024 * 1024

#: Options for opening containers in :func:`audio_hash`. ``probesize`` bounds the
#: bytes ``avformat_find_stream_info`` reads ahead to fill in stream parameters
#: (default 5 MB): hashing needs no such parameters, and the full probe costs
#: about 50 ms on a 5 MB 16-bit WAV whose packets then take 3 ms to demux. It
#: does not change which packets come out (checked on every file of the shared
#: corpus, tag tests included). ``codec_whitelist=none`` keeps the probe from
#: opening decoders (it decoded embedded cover pictures) and ``max_probe_packets``
#: stops it after one packet: the same hashes on all 212 corpus audio files, 20 %
#: less CPU.
_OPEN_OPTIONS = {"probesize": "65536", "codec_whitelist": "none", "max_probe_packets": "1"}

#: FFmpeg demuxers that stop at the end of their own structures (RIFF/IFF chunk
#: sizes, MP4 sample tables) and so ignore whatever is appended to the file. All
#: others (raw streams, Ogg, ASF, ...) either hand the appended bytes out as audio
#: or fail on them, so tags appended to the file are cut off first.
_SELF_BOUNDED = frozenset({"wav", "w64", "aiff", "mov,mp4,m4a,3gp,3g2,mj2"})

#: Errors PyAV raises for unreadable input (``av.error.FFmpegError`` and its
#: subclasses, some of which are also ``OSError``), plus ``ValueError`` for
#: undecodable metadata and odd container states, and ``IndexError`` should
#: PyAV ever look up a stream that appeared while demuxing in its list of the
#: streams found on opening (see :func:`_packets`).
_AV_ERRORS: tuple[type[Exception], ...] = (av.error.FFmpegError, OSError, ValueError,
                                           IndexError)


def _stream_end(p: Path) -> tuple[int, int]:
    """``(audio_end, size)`` of the file: where appended tags start, and its size."""
    fd = os.open(p, os.O_RDONLY)
    try:
        size = os.fstat(fd).st_size
        return tail_tags_start(fd, size), size
    finally:
        os.close(fd)


def _open(p: Path) -> av.container.InputContainer:
    """Open `p` with PyAV, cutting off appended tags unless the format ignores them."""
    url = "file:" + str(p.absolute())  # "file:" so that "a:b.mp3" is no protocol name
    end, size = _stream_end(p)
    if 0 < end < size:
        try:
            container = av.open(f"subfile,,start,0,end,{end},,:{url}",
                                metadata_errors="ignore", options=_OPEN_OPTIONS)
        except _AV_ERRORS:
            pass  # not what it looked like: read the whole file
        else:
            if container.format.name not in _SELF_BOUNDED:
                return container
            container.close()
    return av.open(url, metadata_errors="ignore", options=_OPEN_OPTIONS)


def audio_hash(path: str | Path) -> str:
    """Hash the coded audio of a file, ignoring tags and container layout.

    The packets of the first audio stream, as FFmpeg demuxes them, are fed in
    order into one XXH3-128 state; packet boundaries do not matter. For WAV,
    AIFF, FLAC, MPEG audio, Ogg Vorbis/Opus and single-track AAC/ALAC MP4 the
    packets' bytes are found by walking the container
    (:mod:`taperoom.audio.containers`), which gives the digest of
    :func:`audio_hash_demuxed` several times faster; every file a walker does
    not vouch for is demuxed.

    Parameters
    ----------
    path : str or Path
        Audio file in any container FFmpeg demuxes (recognised by content).

    Returns
    -------
    str
        32 lower-case hex digits (128 bits), equal to
        ``audio_hash_demuxed(path)``.

    Raises
    ------
    MediaError
        The file cannot be opened or demuxed, has no audio stream, or its audio
        stream holds no data.
    """
    return audio_hash_method(path)[0]


def audio_hash_method(path: str | Path) -> tuple[str, str]:
    """Hash the coded audio of a file like :func:`audio_hash`, and say how.

    Parameters
    ----------
    path : str or Path
        Audio file in any container FFmpeg demuxes.

    Returns
    -------
    (str, str)
        The digest, and the method that produced it: the name of the container
        walker (one of :data:`taperoom.audio.containers.METHODS`) or
        :data:`DEMUX` when the file was demuxed.

    Raises
    ------
    MediaError
        As :func:`audio_hash_demuxed` (errors are always reported by demuxing).
    """
    p = Path(path)
    walked = _walk(p)
    if walked is not None:
        return walked
    return audio_hash_demuxed(p), DEMUX


#: Errors that make the container walk give way to demuxing.
_WALK_ERRORS = (Unsupported, OSError, ValueError, IndexError, OverflowError, struct.error)


def _walk(p: Path) -> tuple[str, str] | None:
    """Digest and walker name for `p`, or None when the file must be demuxed."""
    try:
        fd = os.open(p, os.O_RDONLY | os.O_NONBLOCK)  # a FIFO must not block here
    except OSError:
        return None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or st.st_size < 12:
            return None
        method, ranges, data = audio_ranges(FileView(fd, st.st_size), st.st_size, fd)
        h = xxhash.xxh3_128()
        if data is not None:
            source = memoryview(data)
            for start, stop in ranges:
                h.update(source[start:stop])
            return h.hexdigest(), method
        buf = bytearray(RAW_CHUNK)
        view = memoryview(buf)
        for start, stop in ranges:
            pos = start
            while pos < stop:
                n = os.preadv(fd, [view[:min(RAW_CHUNK, stop - pos)]], pos)
                if n <= 0:
                    return None  # the file shrank since it was walked
                h.update(view[:n])
                pos += n
        return h.hexdigest(), method
    except _WALK_ERRORS:
        return None
    finally:
        os.close(fd)


def audio_hash_demuxed(path: str | Path) -> str:
    """Hash the coded audio of a file by demuxing it with PyAV (the reference).

    The demuxed packets of the first audio stream that carry data are fed, in
    order, into one XXH3-128 state; packet boundaries do not matter. The file is
    read as a stream (memory use does not grow with its size) through FFmpeg's
    own file I/O, which is faster than handing PyAV a Python file object with a
    larger buffer.

    Two corrections keep appended tags out, because most demuxers hand out (or
    fail on) whatever bytes follow the last frame: tags appended to the file
    (ID3v1, APEv2, Lyrics3, a footer-terminated ID3v2) are cut off by reading the
    file through FFmpeg's ``subfile`` protocol up to where they start (except in
    WAV, AIFF and MP4, which ignore them anyway), and in MP3 streams, packets that
    do not start with an MPEG frame sync (tags or junk between or after frames,
    which the MP3 parser emits as packets of their own) are skipped.

    Parameters
    ----------
    path : str or Path
        Audio file in any container FFmpeg demuxes (recognised by content).

    Returns
    -------
    str
        32 lower-case hex digits (128 bits).

    Raises
    ------
    MediaError
        The file cannot be opened or demuxed, has no audio stream, or its audio
        stream holds no data.

    Notes
    -----
    Two files hash equal when they carry the same packets: re-tagging, adding or
    removing cover art, and re-muxing into the same or another container (with
    stream copy) keep the hash; re-encoding, trimming, or any changed audio byte
    changes it. Codec parameters stored outside the packets (FLAC ``STREAMINFO``,
    the Opus output gain) are not part of the hash. Bytes after the last frame
    that are no recognised tag (zero padding, garbage) count as audio in FLAC,
    Monkey's Audio and AC-3 files, whose demuxers append them to the last frame.
    """
    p = Path(path)
    h = xxhash.xxh3_128()
    hashed = 0
    try:
        with _open(p) as container:
            if not container.streams.audio:
                raise MediaError(p, "no audio stream")
            stream = container.streams.audio[0]
            mpeg = container.format.name == "mp3"
            for packet in demux_packets(container, stream):
                size = packet.size
                if size <= 0:
                    continue
                if mpeg:
                    head = memoryview(packet)[:2]
                    if size < 4 or head[0] != 0xFF or head[1] & 0xE0 != 0xE0:
                        continue  # bytes between or after MPEG frames: tags or junk
                h.update(packet)
                hashed += size
    except MediaError:
        raise
    except _AV_ERRORS as exc:
        raise MediaError(p, f"cannot demux audio: {exc}") from exc
    if hashed == 0:
        raise MediaError(p, "audio stream holds no data")
    return h.hexdigest()


def quick_hash(path: str | Path) -> str:
    """Cheap screening hash: file size plus the first and last 64 KiB.

    Reads at most 128 KiB whatever the file's size. It changes when tags change
    (they usually sit in the head or the tail), so it only tells whether a file
    may have changed since it was last seen, or which files could possibly be
    byte-identical; equal quick hashes prove nothing without :func:`raw_hash`
    or :func:`audio_hash`.

    Parameters
    ----------
    path : str or Path
        Any file.

    Returns
    -------
    str
        16 lower-case hex digits: XXH3-64 over the size (8 bytes, little-endian),
        bytes ``[0, 64 KiB)`` and the last ``min(64 KiB, size - 64 KiB)`` bytes.

    Raises
    ------
    MediaError
        The file cannot be opened or read.
    """
    p = Path(path)
    try:
        fd = os.open(p, os.O_RDONLY)
    except OSError as exc:
        raise MediaError(p, exc.strerror or str(exc)) from exc
    try:
        size = os.fstat(fd).st_size
        h = xxhash.xxh3_64()
        h.update(size.to_bytes(8, "little"))
        head = os.pread(fd, QUICK_CHUNK, 0)
        h.update(head)
        tail_at = max(len(head), size - QUICK_CHUNK)
        if size > tail_at:
            h.update(os.pread(fd, size - tail_at, tail_at))
        return h.hexdigest()
    except OSError as exc:
        raise MediaError(p, exc.strerror or str(exc)) from exc
    finally:
        os.close(fd)


def raw_hash(path: str | Path) -> str:
    """Hash every byte of a file (the reference speed for :func:`audio_hash`).

    Parameters
    ----------
    path : str or Path
        Any file.

    Returns
    -------
    str
        32 lower-case hex digits: XXH3-128 over the whole file, read in 1 MiB
        chunks into one reused buffer.

    Raises
    ------
    MediaError
        The file cannot be opened or read.
    """
    p = Path(path)
    h = xxhash.xxh3_128()
    buf = bytearray(RAW_CHUNK)
    view = memoryview(buf)
    try:
        with open(p, "rb", buffering=0) as f:
            while n := f.readinto(buf):
                h.update(view[:n])
    except OSError as exc:
        raise MediaError(p, exc.strerror or str(exc)) from exc
    return h.hexdigest()
