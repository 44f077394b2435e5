"""The library scanner: named phases over batches, a runner and a manager.

=====================  =====================================================
module                 job
=====================  =====================================================
:mod:`.globs`          include/exclude globs (wcmatch)
:mod:`.walk`           phase 1: the audio files below a folder
:mod:`.plan`           phase 2: diff of the files with the database rows
:mod:`.read`           phase 3: tags and audio hash of the files to read
:mod:`.moves`          phase 4: new files that are moved copies of gone tracks
:mod:`.duplicates`     phase 6: duplicate groups of the touched hashes
:mod:`.state`          strategies, counters, cancel flag, per-folder locks
:mod:`.runner`         :class:`Scanner`: the phases of one scan, in order
:mod:`.manager`        :class:`ScanManager`: queue, concurrency, cancellation
=====================  =====================================================

The layout follows Navidrome's ``scanner/phase_*.go`` with its ``scanner.go``
and ``controller.go``.
"""

from __future__ import annotations

from taperoom.library.scanner.globs import compile_globs, glob_to_regex
from taperoom.library.scanner.manager import ScanInProgress, ScanManager, ScanQueue
from taperoom.library.scanner.read import FileRead, read_file, tag_columns
from taperoom.library.scanner.runner import BATCH_SIZE, PROGRESS_INTERVAL, Scanner
from taperoom.library.scanner.state import STRATEGIES, ScanCancelled, ScanState
from taperoom.library.scanner.walk import FileStat, WalkPolicy, root_available, walk

__all__ = ["BATCH_SIZE", "PROGRESS_INTERVAL", "STRATEGIES", "FileRead", "FileStat",
           "ScanCancelled", "ScanInProgress", "ScanManager", "ScanQueue", "ScanState",
           "Scanner", "WalkPolicy", "compile_globs", "glob_to_regex", "read_file",
           "root_available", "tag_columns", "walk"]
