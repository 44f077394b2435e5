"""Cover art of the stations: image files in ``ARTWORK_DIR``.

A station's ``artwork_path`` is stored as ``artwork/<file name>`` (the contract's
form); only its base name is ever used to find the file, so a stored value can
never point outside ``ARTWORK_DIR``. Uploaded images are checked with Pillow
(whole, of an accepted type, no decompression bomb) and written through a
temporary file and a rename, so a crash never leaves half an image under a
station's name.
"""

from __future__ import annotations

import io
import os
import re
import tempfile
from pathlib import Path

from taperoom.errors import InvalidInput, TooLarge, Unprocessable
from taperoom.recorder.settings import RecorderSettings

#: Artwork file types the original accepted, mapped to the Pillow format they must be.
ARTWORK_EXTENSIONS = {"png": "PNG", "jpg": "JPEG", "jpeg": "JPEG", "gif": "GIF",
                      "bmp": "BMP", "webp": "WEBP"}
#: Extension written for each Pillow format when the upload's own does not fit.
_CANONICAL_EXT = {"PNG": "png", "JPEG": "jpg", "GIF": "gif", "BMP": "bmp", "WEBP": "webp"}
#: Folder prefix of ``artwork_path`` values, as the contract shows them (``artwork/...``).
ARTWORK_PREFIX = "artwork"
_SAFE = re.compile(r"[^A-Za-z0-9_.-]+")


def safe_stem(filename: str, *, max_length: int = 60) -> str:
    """An ASCII file-name stem made of `filename`'s stem (``werkzeug.secure_filename``
    style: runs of other characters become ``_``); ``artwork`` when nothing is left."""
    stem = Path(filename.replace("\\", "/")).stem
    stem = _SAFE.sub("_", stem).strip("._-")
    return stem[:max_length] or "artwork"


def check_image(data: bytes) -> str:
    """Verify that `data` is a whole image of an accepted type; returns its Pillow format.

    Parameters
    ----------
    data : bytes
        The uploaded file.

    Raises
    ------
    Unprocessable
        Not an image, a truncated one, a type other than PNG/JPEG/GIF/BMP/WebP,
        or a decompression bomb (Pillow's ``MAX_IMAGE_PIXELS`` guard).
    """
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data)) as img:
            fmt = str(img.format or "")
            img.verify()
        with Image.open(io.BytesIO(data)) as img:  # verify() leaves the image unusable
            img.load()
    except (UnidentifiedImageError, Image.DecompressionBombError) as exc:
        raise Unprocessable(f"the uploaded file is not a valid image: {exc}") from exc
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise Unprocessable(f"the uploaded image is damaged: {exc}") from exc
    if fmt not in _CANONICAL_EXT:
        raise Unprocessable(f"unsupported image type {fmt or 'unknown'}; allowed: "
                            f"{', '.join(sorted(ARTWORK_EXTENSIONS))}")
    return fmt


class ArtworkFolder:
    """The image files of ``ARTWORK_DIR``.

    Parameters
    ----------
    settings : RecorderSettings
        ``ARTWORK_DIR`` and ``MAX_ARTWORK_SIZE_MB`` (read at each call).
    """

    def __init__(self, settings: RecorderSettings) -> None:
        self.settings = settings

    def file(self, artwork_path: str | None) -> Path | None:
        """The file in ``ARTWORK_DIR`` that a stored ``artwork_path`` names (None if none).

        Only the base name is used, so a stored value can never point outside
        ``ARTWORK_DIR``.
        """
        if not artwork_path:
            return None
        name = Path(artwork_path).name
        if not name or name in (".", ".."):
            return None
        return self.settings.artwork_dir / name

    def remove(self, artwork_path: str | None) -> bool:
        """Delete the file a stored ``artwork_path`` names; True if one was deleted."""
        path = self.file(artwork_path)
        if path is None or not path.is_file():
            return False
        path.unlink()
        return True

    def write(self, station_id: int, filename: str, data: bytes) -> str:
        """Check an uploaded image and write it as the artwork of `station_id`.

        The file is ``ARTWORK_DIR/stream_<id>_<safe stem>.<ext>`` (through a
        temporary file and a rename); ``<ext>`` is the upload's own extension when
        it matches the image's real type, else that type's usual one.

        Parameters
        ----------
        station_id : int
        filename : str
            Name the client gave the file (its extension selects the accepted type).
        data : bytes
            File contents.

        Returns
        -------
        str
            The file name written in ``ARTWORK_DIR``.

        Raises
        ------
        InvalidInput
            No file name or a disallowed extension.
        TooLarge
            Larger than ``MAX_ARTWORK_SIZE_MB``.
        Unprocessable
            Empty, not really an image, or damaged.
        """
        if not filename:
            raise InvalidInput("No artwork file provided")
        ext = Path(filename).suffix.lower().lstrip(".")
        if ext not in ARTWORK_EXTENSIONS:
            raise InvalidInput(f"Invalid file type {('.' + ext) if ext else '(none)'}; "
                               f"allowed: {', '.join(sorted(ARTWORK_EXTENSIONS))}")
        if len(data) > self.settings.max_artwork_bytes:
            raise TooLarge(f"artwork is {len(data)} bytes; the limit is "
                           f"{self.settings.max_artwork_size_mb:g} MB")
        if not data:
            raise Unprocessable("the uploaded file is empty")
        fmt = check_image(data)
        if ARTWORK_EXTENSIONS[ext] != fmt:
            ext = _CANONICAL_EXT[fmt]
        name = f"stream_{station_id}_{safe_stem(filename)}.{ext}"
        folder = self.settings.artwork_dir
        folder.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".upload-", dir=folder)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            os.replace(tmp, folder / name)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return name
