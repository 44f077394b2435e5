"""First run: a new library starts with a folder of music (``SEED_FOLDER``).

``make run`` points ``SEED_FOLDER`` at the corpus's ``scanner`` folder, so that a
fresh clone shows tracks on the library's page at once, as it copies a recording
into the ephemeral app's folder. The folder is added only to a database the
server has just created (a folder the user later removes never comes back), and
its scan is queued like any other (``POST /api/scan/library/:id``).
"""

from __future__ import annotations

import contextlib
import logging

from taperoom.errors import Conflict, TaperoomError
from taperoom.library.directories import DirectoryService
from taperoom.library.scanner.manager import ScanQueue
from taperoom.library.schemas import DirectoryCreate

log = logging.getLogger(__name__)


def seed_library(directories: DirectoryService, scans: ScanQueue, folder: str) -> str | None:
    """Add `folder` as a library folder and queue its hybrid scan.

    Parameters
    ----------
    directories : DirectoryService
    scans : ScanQueue
    folder : str
        The folder (``SEED_FOLDER``); blank: nothing is done.

    Returns
    -------
    str or None
        The new library folder's id; None when `folder` is blank or could not be
        added (refused, missing: logged as a warning, never raised, so that the
        server starts all the same).
    """
    if not folder.strip():
        return None
    try:
        directory = directories.create_directory(DirectoryCreate(path=folder.strip()))
    except (TaperoomError, ValueError) as exc:
        log.warning("first run: %s not added as a library folder: %s", folder, exc)
        return None
    with contextlib.suppress(Conflict):  # already queued by the start-up scan
        scans.start(directory.id, "hybrid", "normal")
    log.info("first run: library folder %s added and its scan queued", directory.path)
    return directory.id
