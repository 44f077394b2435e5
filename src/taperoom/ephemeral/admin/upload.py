"""Request bodies of the curator's page written to temp files, with a size limit.

:func:`receive_file` parses a ``multipart/form-data`` body as it arrives
(python-multipart's streaming parser) and writes the part named ``file`` to a
hidden temp file, refusing with 413 as soon as it passes the limit (and at once
when ``Content-Length`` already says so); :func:`receive_body` does the same
for a raw body (a backup archive). Nothing is kept in memory but the current
chunk. :func:`clean_upload_name` turns the name a browser sends into a track
name.
"""

from __future__ import annotations

import os
import secrets
import unicodedata
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from python_multipart import MultipartParser
from python_multipart.multipart import parse_options_header
from starlette.concurrency import run_in_threadpool

from taperoom.ephemeral.intake import SOURCE_EXTENSIONS
from taperoom.errors import InvalidInput, TooLarge

#: Suffix of the temp files of uploads in progress.
TEMP_SUFFIX = ".upload.tmp"
#: Bytes of a multipart body beyond the file itself (boundaries, part headers, fields).
MULTIPART_OVERHEAD = 64 * 1024
#: Longest track name, in bytes of UTF-8 (a file name on common file systems).
MAX_NAME_BYTES = 255


@dataclass(frozen=True)
class ReceivedFile:
    """A file received from a client.

    Attributes
    ----------
    path : Path
        The temp file holding it (the caller removes or renames it).
    filename : str
        The name the client gave it (as sent; see :func:`clean_upload_name`).
    size : int
        Bytes.
    """

    path: Path
    filename: str
    size: int


def temp_path(folder: Path) -> Path:
    """A fresh hidden temp file name in `folder` (not a track: it does not end in .wav)."""
    return folder / f".{secrets.token_hex(8)}{TEMP_SUFFIX}"


def clean_upload_name(raw: str) -> tuple[str, str]:
    """The track name of an uploaded file, and its extension (lower case).

    Folders a browser may send are dropped (both ``/`` and ``\\``), the name is
    NFC-normalised, characters that are not printable (controls, NUL, line
    breaks, non-ASCII spaces) are removed, and leading dots and surrounding
    spaces stripped. A WAV file keeps its name; a file of another format
    (:data:`~taperoom.ephemeral.intake.SOURCE_EXTENSIONS`) is named ``<stem>.wav``.

    Raises
    ------
    InvalidInput
        Nothing is left of the name, it is longer than 255 bytes, or its
        extension is neither ``.wav`` nor one of the converted formats.
    """
    name = raw.replace("\\", "/").rsplit("/", 1)[-1]
    name = unicodedata.normalize("NFC", name)
    name = "".join(c for c in name if c.isprintable()).strip().lstrip(".").strip()
    stem, ext = os.path.splitext(name)
    ext = ext.lower()
    if not stem.strip():
        raise InvalidInput("The file has no usable name")
    if ext != ".wav" and ext not in SOURCE_EXTENSIONS:
        known = ", ".join(sorted({".wav", *SOURCE_EXTENSIONS}))
        raise InvalidInput(f"Not an audio file name ({name!r}); accepted: {known}")
    track = name if ext == ".wav" else f"{stem.rstrip()}.wav"
    if len(track.encode("utf-8", "surrogateescape")) > MAX_NAME_BYTES:
        raise InvalidInput(f"The file name is longer than {MAX_NAME_BYTES} bytes")
    return track, ext


def _declared_length(headers: dict[str, str]) -> int | None:
    value = headers.get("content-length")
    if value is None:
        return None
    try:
        return int(value)
    except ValueError:
        raise InvalidInput("Content-Length is not a number") from None


class _Parts:
    """Callbacks of python-multipart's parser: the part named `field` goes to a file."""

    def __init__(self, field: str, dest: Path, max_bytes: int) -> None:
        self.field = field
        self.dest = dest
        self.max_bytes = max_bytes
        self.header_name = b""
        self.header_value = b""
        self.headers: dict[bytes, bytes] = {}
        self.out: IO[bytes] | None = None
        self.in_file = False
        self.filename: str | None = None
        self.size = 0
        self.other = 0
        self.ended = False
        self.error: Exception | None = None

    def on_part_begin(self) -> None:
        self.headers = {}

    def on_header_field(self, data: bytes, start: int, end: int) -> None:
        self.header_name += data[start:end]

    def on_header_value(self, data: bytes, start: int, end: int) -> None:
        self.header_value += data[start:end]

    def on_header_end(self) -> None:
        self.headers[self.header_name.lower()] = self.header_value
        self.header_name, self.header_value = b"", b""

    def on_headers_finished(self) -> None:
        _, options = parse_options_header(self.headers.get(b"content-disposition", b""))
        name = options.get(b"name", b"").decode("utf-8", "replace")
        filename = options.get(b"filename")
        self.in_file = name == self.field and filename is not None
        if self.in_file:
            if self.out is not None or self.filename is not None:
                self.error = InvalidInput(f"Send one file, in the part named {self.field!r}")
                self.in_file = False
                return
            assert filename is not None
            self.filename = filename.decode("utf-8", "surrogateescape")
            self.out = open(self.dest, "xb")  # noqa: SIM115 -- closed by receive_file

    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        n = end - start
        if self.in_file and self.out is not None:
            self.size += n
            if self.size > self.max_bytes:
                self.error = TooLarge(f"The file is larger than {self.max_bytes} bytes "
                                      "(ADMIN_UPLOAD_MAX_BYTES)")
                return
            self.out.write(data[start:end])
        else:
            self.other += n
            if self.other > MULTIPART_OVERHEAD:
                self.error = TooLarge("The form's other fields are too large")

    def on_part_end(self) -> None:
        if self.in_file and self.out is not None:
            self.out.close()
        self.in_file = False

    def on_end(self) -> None:
        self.ended = True


async def receive_file(headers: dict[str, str], stream: AsyncIterator[bytes], *,
                       folder: Path, max_bytes: int, field: str = "file") -> ReceivedFile:
    """Write the file part `field` of a multipart/form-data body to a temp file in `folder`.

    Parameters
    ----------
    headers : dict
        The request's headers (lower-case names).
    stream : async iterator of bytes
        The request body.
    folder : Path
        Where the temp file goes (on the file system of its destination, so that
        it can be renamed into place).
    max_bytes : int
        Largest file accepted (``ADMIN_UPLOAD_MAX_BYTES``).
    field : str
        Name of the form field holding the file.

    Raises
    ------
    InvalidInput
        Not a multipart/form-data body, an incomplete one, none or several files.
    TooLarge
        The file (or ``Content-Length``) is over `max_bytes`.
    """
    kind, options = parse_options_header(headers.get("content-type", ""))
    boundary = options.get(b"boundary")
    if kind != b"multipart/form-data" or not boundary:
        raise InvalidInput("Send the file as multipart/form-data, in a part named "
                           f"{field!r}")
    declared = _declared_length(headers)
    if declared is not None and declared > max_bytes + MULTIPART_OVERHEAD:
        raise TooLarge(f"The upload is larger than {max_bytes} bytes (ADMIN_UPLOAD_MAX_BYTES)")
    dest = temp_path(folder)
    parts = _Parts(field, dest, max_bytes)
    callbacks = {name: getattr(parts, name) for name in (
        "on_part_begin", "on_header_field", "on_header_value", "on_header_end",
        "on_headers_finished", "on_part_data", "on_part_end", "on_end")}
    parser = MultipartParser(boundary, callbacks)  # type: ignore[arg-type]
    try:
        async for chunk in stream:
            if chunk:
                await run_in_threadpool(parser.write, chunk)
            if parts.error is not None:
                raise parts.error
        parser.finalize()
        if parts.error is not None:
            raise parts.error
        if parts.filename is None:
            raise InvalidInput(f"No file in the part named {field!r}")
        if not parts.ended:
            raise InvalidInput("The multipart body is incomplete")
    except BaseException as exc:
        if parts.out is not None:
            parts.out.close()
        dest.unlink(missing_ok=True)
        if isinstance(exc, ValueError) and not isinstance(exc, InvalidInput | TooLarge):
            raise InvalidInput(f"Malformed multipart body: {exc}") from None
        raise
    return ReceivedFile(dest, parts.filename, parts.size)


async def receive_body(headers: dict[str, str], stream: AsyncIterator[bytes], *,
                       folder: Path, max_bytes: int, what: str) -> ReceivedFile:
    """Write a raw request body to a temp file in `folder`.

    Raises
    ------
    InvalidInput
        An empty body.
    TooLarge
        Over `max_bytes` (``Content-Length`` is checked before anything is read).
    """
    declared = _declared_length(headers)
    if declared is not None and declared > max_bytes:
        raise TooLarge(f"The {what} is larger than {max_bytes} bytes")
    dest = temp_path(folder)
    size = 0
    try:
        with open(dest, "xb") as out:
            async for chunk in stream:
                size += len(chunk)
                if size > max_bytes:
                    raise TooLarge(f"The {what} is larger than {max_bytes} bytes")
                await run_in_threadpool(out.write, chunk)
        if size == 0:
            raise InvalidInput(f"Send the {what} as the request body")
    except BaseException:
        dest.unlink(missing_ok=True)
        raise
    return ReceivedFile(dest, "", size)
