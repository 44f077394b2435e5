"""FFmpeg's own CRC routine (``av_crc``), called through ``ctypes``.

The FLAC and Ogg walkers must reject exactly the frames and pages whose CRC
FFmpeg finds wrong; Python has no fast MSB-first CRC, but the libavutil that
PyAV loads has, so this module binds ``av_crc`` and ``av_crc_get_table`` from
it (found among the process's mapped libraries, which is Linux-specific).
Each binding is checked against a reference value before use; where the
library cannot be found or fails the check, :func:`crc_function` returns None
and the callers demux (FLAC) or compute the CRC in Python (Ogg).

Source: FFmpeg ``libavutil/crc.h`` (``enum AVCRCId``, ``av_crc``).
"""

from __future__ import annotations

import ctypes
import re
from collections.abc import Callable
from functools import cache

import av  # noqa: F401 - loads the libavutil whose av_crc is bound here

__all__ = ["AV_CRC_16_ANSI", "AV_CRC_32_IEEE", "Crc", "address_of", "crc_function"]

#: ``enum AVCRCId`` values (``libavutil/crc.h``): FLAC frames, Ogg pages.
AV_CRC_16_ANSI = 1
AV_CRC_32_IEEE = 3

#: CRC of ``b"123456789"`` with initial value 0, as ``av_crc`` returns it (byte
#: order as FFmpeg keeps it) or in the usual order: CRC-16 polynomial 0x8005
#: (0xFEE8) and CRC-32 polynomial 0x04C11DB7 without final XOR (0x89A1897F).
_CHECK = {AV_CRC_16_ANSI: (0xFEE8, 0xE8FE), AV_CRC_32_IEEE: (0x89A1897F, 0x7F89A189)}


def address_of(data: bytes) -> int:
    """Address of the first byte of `data` (valid while `data` is alive).

    Parameters
    ----------
    data : bytes
        An immutable bytes object.

    Returns
    -------
    int
        The address of its buffer.
    """
    return ctypes.cast(ctypes.c_char_p(data), ctypes.c_void_p).value or 0


class Crc:
    """``av_crc`` bound to one CRC table.

    Parameters
    ----------
    av_crc : callable
        The ``ctypes`` function ``av_crc``.
    table : int
        Address of the table (``av_crc_get_table``).
    """

    def __init__(self, av_crc: Callable[..., int], table: int) -> None:
        self._fn = av_crc
        self._table = table

    def at(self, address: int, length: int, initial: int = 0) -> int:
        """CRC of `length` bytes at `address`, continuing from `initial`.

        Parameters
        ----------
        address : int
            From :func:`address_of` plus an offset; the caller keeps the bytes
            alive and within bounds.
        length : int
            Number of bytes.
        initial : int
            CRC so far (0 to start); for the big-endian tables used here FFmpeg
            keeps the value byte-swapped, and so does the result.

        Returns
        -------
        int
            The updated CRC.
        """
        return int(self._fn(self._table, initial, address, length))

    def of(self, data: bytes, start: int, stop: int, initial: int = 0) -> int:
        """CRC of ``data[start:stop]`` without copying it.

        Parameters
        ----------
        data : bytes
            The buffer.
        start, stop : int
            Byte range within `data`.
        initial : int
            CRC so far.

        Returns
        -------
        int
            The updated CRC.

        Raises
        ------
        ValueError
            The range is not within `data`.
        """
        if not 0 <= start <= stop <= len(data):
            raise ValueError("CRC range outside the data")
        return self.at(address_of(data) + start, stop - start, initial)


def _libavutil_paths() -> list[str]:
    try:
        with open("/proc/self/maps", encoding="utf-8", errors="replace") as f:
            maps = f.read()
    except OSError:
        return []
    return sorted(set(re.findall(r"(/\S*/libavutil[^/\s]*\.so[^\s]*)", maps)))


@cache
def crc_function(crc_id: int) -> Crc | None:
    """Bind FFmpeg's ``av_crc`` for one of its CRC tables.

    Parameters
    ----------
    crc_id : int
        :data:`AV_CRC_16_ANSI` or :data:`AV_CRC_32_IEEE`.

    Returns
    -------
    Crc or None
        The bound CRC; None where libavutil is not found or the binding fails
        its self-test.
    """
    if crc_id not in _CHECK:
        return None
    for path in _libavutil_paths():
        try:
            lib = ctypes.CDLL(path)
            get_table, av_crc = lib.av_crc_get_table, lib.av_crc
        except (OSError, AttributeError):
            continue
        get_table.restype, get_table.argtypes = ctypes.c_void_p, [ctypes.c_int]
        av_crc.restype = ctypes.c_uint32
        av_crc.argtypes = [ctypes.c_void_p, ctypes.c_uint32, ctypes.c_void_p, ctypes.c_size_t]
        table = get_table(crc_id)
        if table:
            crc = Crc(av_crc, table)
            if crc.of(b"123456789", 0, 9) in _CHECK[crc_id]:
                return crc
    return None
