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

The package imports nothing itself: the read phase runs in ``forkserver``
processes that import :mod:`.read` alone, so that each pool process starts
without the job queue, the ORM models and the web stack.
"""
