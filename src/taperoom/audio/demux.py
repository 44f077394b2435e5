"""Demuxing with PyAV that survives streams appearing mid-file."""

from __future__ import annotations

from collections.abc import Generator, Iterator
from typing import cast

import av
import av.audio.stream
import av.container

__all__ = ["demux_packets"]


def demux_packets(container: av.container.InputContainer,
                  stream: av.audio.stream.AudioStream) -> Iterator[av.Packet]:
    """The demuxed packets of `stream`, without PyAV's end-of-stream flush packets.

    Parameters
    ----------
    container : av.container.InputContainer
        An open input.
    stream : av.audio.stream.AudioStream
        The stream to read, one of ``container.streams``.

    Yields
    ------
    av.Packet
        Its packets in file order. A decoder fed from here is flushed by the
        caller (``codec_context.decode(None)``), as no empty packet comes.

    Notes
    -----
    PyAV's ``InputContainer.demux`` (18.x, ``av/container/input.py``) marks
    the wanted streams in an array sized to the streams found on opening, and
    after the last packet it walks that array for every stream the container
    has *now* to yield one empty flush packet per wanted stream. Streams can
    appear while demuxing: a chained Ogg file whose later link carries cover
    art gets a picture stream from FFmpeg's Vorbis comment parser. The walk
    then reads past the array's end, and the left-over heap byte it finds
    decides whether PyAV raises ``IndexError`` or ends quietly, so the same
    file hashed on one run and failed on another. The flush packets carry no
    data, and every packet FFmpeg's ``av_read_frame`` returns is
    reference-counted, so has a data pointer even when empty (FFmpeg
    ``libavformat/demux.c``, ``av_packet_make_refcounted``): the first packet
    without one is the end of the stream, and the generator is closed there,
    before PyAV looks at any other stream.
    """
    # demux() is a generator (its stub says Iterator): closing it runs its cleanup now.
    packets = cast(Generator[av.Packet, None, None], container.demux(stream))
    try:
        for packet in packets:
            if not packet.buffer_ptr:
                return
            yield packet
    finally:
        packets.close()
