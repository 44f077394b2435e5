"""From a ``POST /jobs`` request to a :class:`~taperoom.analysis.server.jobs.JobSpec`.

Local mode names a file on this machine (``file_path``): it must be absolute and,
with its links resolved, inside one of the ``ANALYSIS_SERVER_ALLOWED_ROOTS``
(else 403, whether or not it exists, so a refusal reveals nothing). A missing or
undecodable file inside them is accepted and fails in the job (``job_failed``),
as the contract's client expects. Remote mode brings the file in the request; it
waits in a folder of its own, removed when the job ends.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path, PurePosixPath
from typing import Any

from taperoom.analysis.contract import AnalysisOptions, check_callback_url, check_track_hash
from taperoom.analysis.server.jobs import JobSpec
from taperoom.errors import Forbidden, InvalidInput

__all__ = ["STEM_DELIVERY_MODES", "JobIntake"]

#: ``stem_delivery_mode`` values of the contract.
STEM_DELIVERY_MODES = frozenset({"path", "callback"})
#: Extension kept from an upload's name (FFmpeg probes the content anyway).
_EXTENSION = re.compile(r"\.[A-Za-z0-9]{1,8}")
#: Longest ``file_path`` accepted (characters; PATH_MAX of Linux).
MAX_PATH = 4096


class JobIntake:
    """Checks job requests and prepares their files.

    Parameters
    ----------
    roots : list of Path
        Folders local-mode files must be in (resolved); empty: local mode refused.
    upload_dir : Path or None
        Where upload folders are made (None: the system's temporary folder).
    """

    def __init__(self, roots: list[Path], upload_dir: Path | None) -> None:
        self.roots = roots
        self.upload_dir = upload_dir

    def confine(self, file_path: Any) -> Path:
        """The resolved path of a local-mode ``file_path``.

        Raises
        ------
        InvalidInput
            Not an absolute path (or too long, or holding a NUL).
        Forbidden
            Local mode is off, or the path (links resolved) is outside every root.
        """
        if not isinstance(file_path, str) or not file_path or len(file_path) > MAX_PATH \
                or "\0" in file_path:
            raise InvalidInput(f"file_path must be an absolute path of at most {MAX_PATH} "
                               "characters")
        if not os.path.isabs(file_path):
            raise InvalidInput("file_path must be an absolute path")
        if not self.roots:
            raise Forbidden("Local file paths are disabled on this analysis server: set "
                            "ANALYSIS_SERVER_ALLOWED_ROOTS, or upload the file (multipart)")
        resolved = Path(os.path.realpath(file_path))
        if not any(resolved == root or resolved.is_relative_to(root) for root in self.roots):
            raise Forbidden("file_path is outside the folders this analysis server may read "
                            "(ANALYSIS_SERVER_ALLOWED_ROOTS)")
        return resolved

    def local(self, payload: Any) -> JobSpec:
        """The job of a local-mode JSON body.

        Raises
        ------
        InvalidInput
            Not a JSON object, or a field is missing or wrong.
        Forbidden
            See :meth:`confine`.
        """
        if not isinstance(payload, Mapping):
            raise InvalidInput("The request body must be a JSON object")
        if "file_path" not in payload:
            raise InvalidInput("file_path is required (or upload the file as multipart "
                               "field 'file')")
        common = self._common(payload.get("track_hash"), payload.get("options"),
                              payload.get("callback_url"),
                              payload.get("stem_delivery_mode"), default_delivery="path")
        path = self.confine(payload["file_path"])
        return JobSpec(audio_path=path, source=payload["file_path"], mode="local", **common)

    def upload(self, fields: Mapping[str, Any], filename: str, work_dir: Path) -> JobSpec:
        """The job of a remote-mode upload already saved in `work_dir`.

        Parameters
        ----------
        fields : mapping
            The form's text fields (``track_hash``, ``options`` as a JSON string,
            ``callback_url``, ``stem_delivery_mode``).
        filename : str
            The upload's name as the client sent it.
        work_dir : Path
            From :meth:`new_work_dir`, holding :meth:`upload_path`.
        """
        raw = fields.get("options")
        options: Any = None
        if raw not in (None, ""):
            try:
                options = json.loads(raw)
            except (TypeError, ValueError):
                raise InvalidInput("options must be a JSON object (as a string)") from None
        common = self._common(fields.get("track_hash"), options, fields.get("callback_url"),
                              fields.get("stem_delivery_mode"), default_delivery="callback")
        name = PurePosixPath(filename.replace("\\", "/")).name or "upload"
        return JobSpec(audio_path=self.upload_path(work_dir, filename), source=name,
                       mode="remote", work_dir=work_dir, **common)

    def new_work_dir(self) -> Path:
        """A new folder of its own for one upload (mode 0700)."""
        if self.upload_dir is not None:
            self.upload_dir.mkdir(parents=True, exist_ok=True)
        return Path(tempfile.mkdtemp(prefix="taperoom-analysis-", dir=self.upload_dir))

    @staticmethod
    def upload_path(work_dir: Path, filename: str) -> Path:
        """Where the upload named `filename` is kept: ``upload`` plus its extension."""
        suffix = PurePosixPath(filename.replace("\\", "/")).suffix
        return work_dir / ("upload" + (suffix.lower() if _EXTENSION.fullmatch(suffix) else ""))

    @staticmethod
    def discard(work_dir: Path) -> None:
        """Remove an upload folder."""
        shutil.rmtree(work_dir, ignore_errors=True)

    @staticmethod
    def _common(track_hash: Any, options: Any, callback_url: Any, delivery: Any, *,
                default_delivery: str) -> dict[str, Any]:
        if track_hash in (None, ""):
            raise InvalidInput("track_hash is required")
        job_id = check_track_hash(track_hash)
        url = None if callback_url in (None, "") else check_callback_url(callback_url)
        mode = default_delivery if delivery in (None, "") else delivery
        if not isinstance(mode, str) or mode not in STEM_DELIVERY_MODES:
            raise InvalidInput("stem_delivery_mode must be 'path' or 'callback'")
        return {"job_id": job_id, "options": AnalysisOptions.parse(options),
                "callback_url": url, "stem_delivery_mode": mode}
