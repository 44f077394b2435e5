"""The analysis-server wire contract (``shared/contracts/library.md`` §3), shared by
Taperoom's server (:mod:`taperoom.analysis.server`) and its client
(:mod:`taperoom.analysis.remote`).

A client posts a job (``POST /jobs``), the server analyses the file and posts one
callback per stage to the job's ``callback_url``:
``{"job_id", "stage", "status", "timestamp", "data"}`` with the headers
``X-Mismo-Job-ID`` and ``X-Mismo-Stage``. The job id is the track hash the client
sent (the Node.js backend looks its jobs up by that hash).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict

from taperoom.errors import InvalidInput

__all__ = [
    "CALLBACK_SCHEMES",
    "JOB_ID_HEADER",
    "MAX_CALLBACK_URL",
    "MODEL_STAGES",
    "RESULT_STAGES",
    "STAGE_HEADER",
    "AnalysisOptions",
    "check_callback_url",
    "check_track_hash",
    "json_safe",
]

#: Callback header naming the job (contract §3).
JOB_ID_HEADER = "X-Mismo-Job-ID"
#: Callback header naming the stage (contract §3).
STAGE_HEADER = "X-Mismo-Stage"
#: Stages Taperoom's analyzer computes.
RESULT_STAGES = ("basic_features", "characteristics")
#: Stages of the contract that need something this server does not have (a
#: separation or classification model, a segmenter), in contract order.
MODEL_STAGES = ("genre", "stems", "segments", "transitions")
#: Schemes a callback URL may use.
CALLBACK_SCHEMES = frozenset({"http", "https"})
#: Longest callback URL accepted (characters).
MAX_CALLBACK_URL = 2048
#: A track hash (the job id): it appears in URL paths, so letters, digits and ``._:-`` only.
_TRACK_HASH = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,127}")


def json_safe(value: Any) -> Any:
    """`value` for JSON: non-finite floats as null (JSON has no NaN, RFC 8259 §6), numpy
    scalars as Python numbers, inside dicts, lists and tuples too (tuples become lists)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    if hasattr(value, "item") and callable(value.item):  # numpy scalar
        return json_safe(value.item())
    return value


class AnalysisOptions(BaseModel):
    """The ``options`` of a job (contract §3).

    ``basic_features`` and ``characteristics`` default to true (only an explicit
    false turns them off), the other stages to false, as the Node.js client sends
    them. Unknown keys are ignored.
    """

    model_config = ConfigDict(extra="ignore")

    basic_features: bool = True
    characteristics: bool = True
    genre: bool = False
    stems: bool = False
    segments: bool = False
    transitions: bool = False

    @classmethod
    def parse(cls, value: Mapping[str, Any] | None) -> AnalysisOptions:
        """Options from a request's ``options`` object (None: the defaults).

        Raises
        ------
        InvalidInput
            A value is not a boolean (``"yes"``, ``2``).
        """
        if value is None:
            return cls()
        if not isinstance(value, Mapping):
            raise InvalidInput("options must be a JSON object")
        known = {k: v for k, v in value.items() if k in cls.model_fields}
        bad = [k for k, v in known.items() if not isinstance(v, bool)]
        if bad:
            raise InvalidInput(f"options.{bad[0]} must be true or false")
        return cls(**known)

    def requested(self) -> list[str]:
        """The stages asked for, in contract order."""
        return [name for name in (*RESULT_STAGES, *MODEL_STAGES) if getattr(self, name)]


def check_track_hash(value: str) -> str:
    """`value` if it can serve as a job id, else :class:`InvalidInput` (HTTP 400).

    A job id travels in URL paths (``GET /jobs/{id}``): 1-128 characters,
    letters, digits and ``. _ : -``, starting with a letter or digit (a content
    hash in hex or base32 always is).
    """
    if not isinstance(value, str) or not _TRACK_HASH.fullmatch(value):
        raise InvalidInput("track_hash must be 1-128 letters, digits or . _ : - "
                           "(starting with a letter or digit)")
    return value


def check_callback_url(value: str) -> str:
    """`value` if it is an absolute ``http``/``https`` URL with a host, else
    :class:`InvalidInput` (HTTP 400).

    Parameters
    ----------
    value : str
        The job's ``callback_url`` (at most :data:`MAX_CALLBACK_URL` characters).

    Returns
    -------
    str
        The URL, stripped of surrounding blanks.
    """
    url = value.strip() if isinstance(value, str) else ""
    if not url or len(url) > MAX_CALLBACK_URL:
        raise InvalidInput(f"callback_url must be an http(s) URL of at most "
                           f"{MAX_CALLBACK_URL} characters")
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - a port that is not a number raises ValueError
    except ValueError:
        raise InvalidInput("callback_url is not a valid URL") from None
    if parts.scheme.lower() not in CALLBACK_SCHEMES or not parts.hostname:
        raise InvalidInput("callback_url must be an absolute http:// or https:// URL")
    if any(ch.isspace() or ord(ch) < 0x20 for ch in url):
        raise InvalidInput("callback_url must not contain blanks or control characters")
    return url
