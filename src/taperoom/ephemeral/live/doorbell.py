"""Wake-ups between the worker processes of one ``METADATA_DIR``: a datagram socket each.

Each process that serves live wear binds a Unix datagram socket in Linux's
abstract namespace (no file, so no path-length limit and nothing left behind
by a killed process) and registers its name as an empty file in a folder of
the data dir. :meth:`Doorbells.ring` sends one byte to every registered socket;
a registration whose socket nobody holds any more (``ECONNREFUSED``: its
process died) is removed by the first process that finds it.

A ring carries nothing but "look at the log": rings that find the receiver's
buffer full (``EAGAIN``) are dropped, since the receiver already has one to
read, and a receiver that reads one ring reads every row logged since its last
look, so no play is lost to a lost ring.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import secrets
import socket
import time
from pathlib import Path

log = logging.getLogger(__name__)

#: Abstract-namespace names start with this (after the leading NUL byte).
PREFIX = "taperoom-wear-"
#: Seconds a listing of the registry is trusted while the folder's time stamp stays the
#: same (the kernel's coarse clock can give two changes in a row the same time stamp).
LIST_EVERY = 1.0


class Doorbells:
    """The registry of live wear sockets in `folder`, for ringing them all.

    Parameters
    ----------
    folder : Path
        Shared by every process of one ``METADATA_DIR``; created.
    """

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        self._out = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self._out.setblocking(False)
        self._names: list[str] = []
        self._seen: tuple[int, int] | None = None
        self._listed = 0.0

    def close(self) -> None:
        """Close the sending socket."""
        self._out.close()

    def _registered(self) -> list[str]:
        """Names in the folder, listed again when the folder changed (or every
        :data:`LIST_EVERY` seconds)."""
        st = os.stat(self.folder)
        key = (st.st_mtime_ns, st.st_ino)
        now = time.monotonic()
        if key != self._seen or now - self._listed > LIST_EVERY:
            self._seen, self._listed = key, now
            self._names = sorted(n for n in os.listdir(self.folder) if n.startswith(PREFIX))
        return self._names

    def ring(self) -> None:
        """Wake every registered process (this one too, when it listens)."""
        for name in self._registered():
            try:
                self._out.sendto(b"!", b"\0" + name.encode())
            except BlockingIOError:  # its buffer is full: it has rings to read already
                continue
            except ConnectionRefusedError:  # nobody holds it: its process is gone
                with contextlib.suppress(FileNotFoundError):
                    (self.folder / name).unlink()
                self._seen = None
            except OSError as exc:
                log.warning("could not wake live wear socket %s: %s", name, exc)

    def listen(self) -> Doorbell:
        """Bind a new socket of this process and register it."""
        return Doorbell(self.folder)


class Doorbell:
    """One process's socket, rung by :meth:`Doorbells.ring` anywhere.

    Parameters
    ----------
    folder : Path
        The registry folder of :class:`Doorbells`.
    """

    def __init__(self, folder: Path) -> None:
        self.name = f"{PREFIX}{os.getpid()}-{secrets.token_hex(6)}"
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(b"\0" + self.name.encode())
        self.registration = folder / self.name
        self.registration.touch()

    def wait(self, timeout: float) -> bool:
        """Block until rung or `timeout` seconds pass; read every pending ring.

        Returns
        -------
        bool
            True when rung.
        """
        self.sock.settimeout(timeout)
        try:
            self.sock.recv(64)
        except TimeoutError:
            return False
        except OSError as exc:
            if exc.errno in (errno.EBADF, errno.ENOTSOCK):  # closed by close()
                return False
            raise
        self.sock.setblocking(False)
        with contextlib.suppress(BlockingIOError):
            while self.sock.recv(64):
                pass
        return True

    def wake(self) -> None:
        """Ring this socket from this process (to stop a :meth:`wait`)."""
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s, \
                contextlib.suppress(OSError):
            s.sendto(b".", b"\0" + self.name.encode())

    def close(self) -> None:
        """Unregister and close the socket."""
        with contextlib.suppress(FileNotFoundError):
            self.registration.unlink()
        self.sock.close()
