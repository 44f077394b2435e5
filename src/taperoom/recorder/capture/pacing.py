"""Paced reads of a live stream: the socket gathers audio between two reads.

A radio stream arrives at its bit rate (16 kB/s at 128 kbit/s) in small TCP
segments, often one every few milliseconds. Reading each one as it comes costs a
trip through the HTTP client, the ICY demuxer, the frame synchroniser and the
supervisor's queue per segment: far more CPU than the bytes are worth. A
:class:`ReadPacer` makes the reader wait ``pause`` seconds between two reads, so
that each read takes everything the kernel gathered meanwhile (a few kilobytes)
at the cost of one trip.

The wait is a ``poll()`` on the connection's socket for the events that must not
wait: the peer closing (``POLLRDHUP``: FIN), an error or a reset (``POLLERR``,
``POLLHUP``), so a drop is noticed as soon as without pacing; and a wake-up
descriptor (an ``eventfd``, or a pipe where there is none) through which the
supervisor asks for one last read when the recording ends (:meth:`wake`). Data
arriving does not end the wait (``POLLIN`` is not polled): that is the point.

A read that fills the reader's buffer (``full_read`` bytes: a burst on connect, a
file served faster than real time), or after which the socket is still readable
(TLS hands over one record per read, and a paused reader finds several waiting), is
followed at once by the next one.
"""

from __future__ import annotations

import contextlib
import os
import select
import socket
import ssl
import threading

#: Seconds between two reads of a live stream (at most; see :class:`ReadPacer`).
PAUSE_SECONDS = 0.5
#: A read this large (bytes) may have left more behind: the next read follows at once.
#: httpcore reads up to 64 KiB; TLS hands over at most one record (16 KiB) per read.
FULL_READ = 16 * 1024
#: Events that end a pause early: the peer closed its side, an error, a hang-up.
_CLOSE_EVENTS = getattr(select, "POLLRDHUP", 0) | select.POLLERR | select.POLLHUP


class ReadPacer:
    """Waits between the reads of one connection, for the data or the end to gather.

    Parameters
    ----------
    sock : socket.socket or None
        The connection's socket (plain or TLS); None disables pacing (every
        :meth:`pause` returns at once).
    pause : float
        Longest wait between two reads, in seconds.
    full_read : int
        Bytes of a read after which the next read follows without a wait.

    Notes
    -----
    One pacer per connection, used by the reading thread; :meth:`wake` may be called
    from any thread. :meth:`close` releases the wake-up descriptor.
    """

    def __init__(self, sock: socket.socket | None, *, pause: float = PAUSE_SECONDS,
                 full_read: int = FULL_READ) -> None:
        self.pause_seconds = pause
        self.full_read = full_read
        self.waiting = False  # inside a pause (the supervisor's :meth:`wake` then counts)
        self._lock = threading.Lock()
        self._poll: select.poll | None = None
        self._readable = select.poll()  # data already waiting: no pause
        self._sock = sock
        self._wake_r = self._wake_w = -1
        if sock is None or pause <= 0:
            return
        try:
            fd = sock.fileno()
        except OSError:
            return
        if fd < 0:
            return
        if hasattr(os, "eventfd"):
            self._wake_r = self._wake_w = os.eventfd(0, os.EFD_NONBLOCK | os.EFD_CLOEXEC)
        else:  # pragma: no cover - non-Linux
            self._wake_r, self._wake_w = os.pipe()
            os.set_blocking(self._wake_r, False)
        self._poll = select.poll()
        self._poll.register(fd, _CLOSE_EVENTS)
        self._readable.register(fd, select.POLLIN | _CLOSE_EVENTS)
        self._poll.register(self._wake_r, select.POLLIN)

    @property
    def active(self) -> bool:
        """Whether reads are paced (a socket was found)."""
        return self._poll is not None

    def pause(self, last_read: int) -> bool:
        """Wait before the next read, unless `last_read` bytes filled the buffer or
        more data is waiting already.

        Parameters
        ----------
        last_read : int
            Bytes the last read returned.

        Returns
        -------
        bool
            True when the wait ended because :meth:`wake` was called.
        """
        if self._poll is None or last_read >= self.full_read:
            return False
        if isinstance(self._sock, ssl.SSLSocket) and self._sock.pending():
            return False  # decrypted bytes held by the TLS layer
        if self._readable.poll(0):
            return False
        self.waiting = True
        try:
            ready = self._poll.poll(int(self.pause_seconds * 1000))
        except InterruptedError:  # pragma: no cover - PEP 475 retries poll()
            ready = []
        finally:
            self.waiting = False
        woken = any(fd == self._wake_r for fd, _ in ready)
        if woken:
            with contextlib.suppress(BlockingIOError, OSError):
                os.read(self._wake_r, 8)
        return woken

    def wake(self) -> None:
        """End the current (or next) pause at once (any thread)."""
        with self._lock:
            if self._wake_w >= 0:
                with contextlib.suppress(OSError):
                    os.write(self._wake_w, (1).to_bytes(8, "little"))

    def close(self) -> None:
        """Release the wake-up descriptor(s); pauses no longer wait."""
        with self._lock:
            fds = {self._wake_r, self._wake_w} - {-1}
            self._wake_r = self._wake_w = -1
            self._poll = None
        for fd in fds:
            with contextlib.suppress(OSError):
                os.close(fd)
