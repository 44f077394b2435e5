"""Two ``full`` scans of one folder in one process: the first pays the reader pool's start.

The read phase of a big scan runs in ``forkserver`` processes (see
:func:`taperoom.library.scanner.read.reader_pool`). The first such scan of a process
starts the forkserver, which imports the app once; every later scan forks its reader
processes from it. This script scans `folder` into a new SQLite database, deletes the
tracks, scans again, and prints each scan's wall time and the CPU time of the whole
machine during it (from ``/proc/stat``: the reader processes are not this process's
children, so ``getrusage`` would miss them). Run it on a quiet machine.

Usage::

    PYTHONPATH=src .venv/bin/python bench/scan_twice.py FOLDER
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))


def machine_busy() -> float:
    """CPU seconds the whole machine spent busy since boot (``/proc/stat``, USER_HZ 100)."""
    with open("/proc/stat", encoding="ascii") as f:
        ticks = [int(v) for v in f.readline().split()[1:]]
    return (sum(ticks) - ticks[3] - ticks[4]) / 100.0


def main() -> None:
    import sqlalchemy as sa

    from taperoom.db import transaction
    from taperoom.library import models
    from taperoom.library.context import build_services
    from taperoom.library.settings import LibrarySettings

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path, help="folder of audio files to scan")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        settings = LibrarySettings(database_path=Path(tmp) / "scan.db", scan_on_startup=False,
                                   file_watcher_enabled=False, engine_link_enabled=False)
        services = build_services(settings)
        try:
            with transaction(services.db) as session:
                folder = models.LibraryDirectory(path=str(args.folder.resolve()), name="bench")
                session.add(folder)
                session.flush()
                folder_id = folder.id
            for label in ("first", "second"):
                wall, busy = time.perf_counter(), machine_busy()
                result = services.scans.scan_sync(folder_id, "full")
                print(f"{label} full scan: {result['tracksAdded']} tracks, "
                      f"wall {time.perf_counter() - wall:.2f} s, "
                      f"machine CPU {machine_busy() - busy:.2f} s", flush=True)
                with transaction(services.db) as session:
                    session.execute(sa.delete(models.Track))
        finally:
            services.close()


if __name__ == "__main__":
    main()
