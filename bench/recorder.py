"""Benchmark of the recorder's capture: CPU per hour of audio, concurrent recordings.

A real Icecast-like server (``tests/recorder/streamserver.py``, the peer of the
end-to-end tests) runs in a process of its own and serves, in real time, a real
recording from the shared corpus as MP3 (128 kbit/s) and as AAC (ADTS,
96 kbit/s). Captures run in a separate worker process, as threads, the way the
recorder runs them (``taperoom.recorder.capture.record_stream``), so their CPU
is measured apart from the server's (which is reported beside it). A short
capture warms the worker up (imports, the TLS context) before anything is measured.

1. CPU seconds per hour of recorded audio, for a stream copy (MP3 source) and
   for a re-encode (AAC source -> MP3 at ``MP3_BITRATE_KBPS``), each next to a
   reference measured in the same run on the same stream: reading the bytes with
   httpx and discarding them (the network floor) for the copy, and decoding and
   encoding the same audio offline with PyAV for the re-encode.
2. Concurrent real-time recordings: N recordings at once, N rising until a step
   fails; a step passes when every recording has at least 95 % of its wall time
   as audio, with no error and no reconnect, and all of them end within
   ``LATE_LIMIT`` seconds of their end time. The server sends each listener's
   audio every ``--send-interval`` seconds in these steps (every 20 ms in part 1).

Usage::

    .venv/bin/python bench/recorder.py [--write] [--seconds 30] [--step-seconds 20]

``--write`` replaces the "recorder" section of ``BENCHMARKS.md``.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import datetime as dt
import multiprocessing
import os
import resource
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.common import loadavg, machine_cpu, md_table, replace_section  # noqa: E402
from tests.recorder.streamserver import SOURCE_NAME, StreamServer, build_media  # noqa: E402

CORPUS = ROOT.parent / "shared" / "corpus"
HOUR = 3600.0
#: Seconds a concurrency step may end after its recordings' end time and still pass.
LATE_LIMIT = 5.0


def _raise_fd_limit() -> int:
    """Raise this process's soft limit of open files to its hard limit (children inherit it)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def _serve(conn: Any, media_dir: str, source: str) -> None:
    """Server process: run a :class:`StreamServer`, answer ``(command, args)`` on `conn`."""
    _raise_fd_limit()
    media = build_media(Path(media_dir), Path(source))
    with StreamServer(media) as server:
        while True:
            cmd, args = conn.recv()
            if cmd == "stop":
                conn.send(None)
                return
            if cmd == "mount":
                path, config = args
                server.mount(path, **config)
                conn.send(server.url(path))
            elif cmd == "cpu":
                conn.send(time.process_time())
            elif cmd == "aac":
                conn.send(b"".join(server.media.aac_frames))


class ServerProcess:
    """The stream server in a process of its own, driven through a pipe."""

    def __init__(self, ctx: Any, media_dir: Path, source: Path) -> None:
        self._conn, child = ctx.Pipe()
        self._proc = ctx.Process(target=_serve, args=(child, str(media_dir), str(source)),
                                 daemon=True)
        self._proc.start()

    def call(self, cmd: str, *args: Any) -> Any:
        self._conn.send((cmd, args))
        return self._conn.recv()

    def mount(self, path: str, **config: Any) -> str:
        """Add a mount; return its URL."""
        return str(self.call("mount", path, config))

    def cpu(self) -> float:
        """CPU seconds the server process used so far."""
        return float(self.call("cpu"))

    def close(self) -> None:
        self.call("stop")
        self._proc.join(10)


def _capture_many(urls: list[str], seconds: float, out_dir: str, bitrate: int
                  ) -> dict[str, Any]:
    """Worker process: record every URL at once for `seconds`; return figures."""
    from taperoom.recorder.capture import CaptureOptions, record_stream
    from taperoom.recorder.urlpolicy import UrlPolicy

    _raise_fd_limit()
    local = UrlPolicy.from_networks("127.0.0.0/8")  # the bench's stream server
    results: list[Any] = [None] * len(urls)
    errors: list[str] = []

    def one(i: int, url: str) -> None:
        try:
            results[i] = record_stream(url, Path(out_dir) / f"r{i}.mp3", seconds,
                                       options=CaptureOptions(bitrate_kbps=bitrate,
                                                              policy=local))
        except Exception as exc:  # reported, not raised: the step fails
            errors.append(f"{type(exc).__name__}: {exc}")

    t_cpu, t_wall = time.process_time(), time.monotonic()
    threads = [threading.Thread(target=one, args=(i, u)) for i, u in enumerate(urls)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    cpu, wall = time.process_time() - t_cpu, time.monotonic() - t_wall
    done = [r for r in results if r is not None]
    return {"cpu": cpu, "wall": wall, "errors": errors,
            "audio": [r.duration_seconds for r in done],
            "reconnects": sum(r.reconnects for r in done),
            "gaps": sum(len(r.gaps) for r in done),
            "stream_copy": [r.stream_copy for r in done]}


def _read_floor(url: str, seconds: float) -> float:
    """Worker process: CPU seconds to read `url` with httpx for `seconds` and discard it."""
    import httpx

    t_cpu = time.process_time()
    deadline = time.monotonic() + seconds
    with httpx.stream("GET", url, timeout=10) as r:
        for _ in r.iter_raw():
            if time.monotonic() >= deadline:
                break
    return time.process_time() - t_cpu


def _offline_transcode(aac: bytes, bitrate: int, out: str) -> tuple[float, float]:
    """Worker process: decode ADTS AAC and encode MP3 with PyAV, as fast as possible.

    Returns (CPU seconds, audio seconds)."""
    import io

    import av

    t_cpu = time.process_time()
    samples = 0
    with av.open(io.BytesIO(aac), format="aac") as src, av.open(out, "w", format="mp3") as dst:
        enc = dst.add_stream("libmp3lame", rate=44100, layout="stereo")
        enc.bit_rate = bitrate * 1000
        res = av.AudioResampler(format=enc.format.name, layout="stereo", rate=44100)
        for frame in src.decode(audio=0):
            for rf in res.resample(frame):
                samples += rf.samples
                dst.mux(enc.encode(rf))
        for rf in res.resample(None):
            dst.mux(enc.encode(rf))
        dst.mux(enc.encode(None))
    return time.process_time() - t_cpu, samples / 44100


def cpu_per_hour(pool: concurrent.futures.Executor, server: ServerProcess, seconds: float,
                 bitrate: int, work: Path) -> list[list[str]]:
    rows = []
    copy_url = server.mount("/copy.mp3", metaint=8192, titles=[(0.0, "Artist - Title")])
    enc_url = server.mount("/enc.aac", kind="aac", metaint=None)
    copy = pool.submit(_capture_many, [copy_url], seconds, str(work / "c"),
                       bitrate).result()
    floor = pool.submit(_read_floor, copy_url, seconds).result()
    audio = copy["audio"][0] if copy["audio"] else float("nan")
    rows.append(["stream copy (MP3 128 kbit/s source)", f"{audio:.1f}",
                 f"{copy['cpu']:.3f}", f"{copy['cpu'] / audio * HOUR:.1f}",
                 "httpx read, discarded", f"{floor / seconds * HOUR:.1f}",
                 f"{copy['cpu'] / audio / (floor / seconds):.2f}×"])
    enc = pool.submit(_capture_many, [enc_url], seconds, str(work / "e"),
                      bitrate).result()
    aac = server.call("aac")
    ref_cpu, ref_audio = pool.submit(_offline_transcode, aac, bitrate,
                                     str(work / "ref.mp3")).result()
    audio = enc["audio"][0] if enc["audio"] else float("nan")
    rows.append([f"re-encode (AAC 96 kbit/s source -> MP3 {bitrate} kbit/s)", f"{audio:.1f}",
                 f"{enc['cpu']:.2f}", f"{enc['cpu'] / audio * HOUR:.1f}",
                 "PyAV decode + encode offline", f"{ref_cpu / ref_audio * HOUR:.1f}",
                 f"{enc['cpu'] / audio / (ref_cpu / ref_audio):.2f}×"])
    return rows


def concurrency(pool: concurrent.futures.Executor, server: ServerProcess, mount: str,
                mount_config: dict[str, Any], steps: list[int], seconds: float, bitrate: int,
                work: Path) -> tuple[list[list[str]], int]:
    rows = []
    best = 0
    for n in steps:
        out = work / f"{mount.strip('/')}-{n}"
        out.mkdir(parents=True, exist_ok=True)
        url = server.mount(f"{mount}", **mount_config)  # a fresh station per step
        busy0, steal0 = machine_cpu()
        server0 = server.cpu()
        t0 = time.monotonic()
        r = pool.submit(_capture_many, [url] * n, seconds, str(out), bitrate).result()
        wall = time.monotonic() - t0
        server_cores = (server.cpu() - server0) / wall
        busy1, steal1 = machine_cpu()
        short = [a for a in r["audio"] if a < 0.95 * seconds]
        reasons = []
        if r["errors"]:
            reasons.append(f"{len(r['errors'])} errors ({r['errors'][0]})")
        if len(r["audio"]) < n:
            reasons.append(f"{n - len(r['audio'])} recordings missing")
        if short:
            reasons.append(f"{len(short)} recordings under 95 % of real time")
        if r["reconnects"]:
            reasons.append(f"{r['reconnects']} reconnects")
        if r["wall"] > seconds + LATE_LIMIT:
            reasons.append(f"ended {r['wall'] - seconds:.0f} s late")
        cores = r["cpu"] / r["wall"]
        ok = not reasons
        if ok:
            best = n
        audio_min = min(r["audio"]) if r["audio"] else float("nan")
        audio_sum = sum(r["audio"]) or float("nan")
        rows.append([str(n), "pass" if ok else "**fail**", f"{audio_min:.1f}",
                     f"{r['cpu'] / audio_sum * HOUR:.1f}", f"{cores:.2f}",
                     f"{server_cores:.2f}", f"{(busy1 - busy0) / wall:.2f}",
                     f"{(steal1 - steal0) / wall:.2f}", "; ".join(reasons) or "-"])
        print(rows[-1], flush=True)
        for f in out.glob("*.mp3"):
            f.unlink()
        if not ok:
            break
    return rows, best


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    p.add_argument("--write", action="store_true", help="update BENCHMARKS.md")
    p.add_argument("--seconds", type=float, default=30.0,
                   help="length of the single recordings of part 1")
    p.add_argument("--step-seconds", type=float, default=20.0,
                   help="length of the recordings of each concurrency step")
    p.add_argument("--bitrate", type=int, default=192, help="MP3 bit rate of re-encodes")
    p.add_argument("--copy-steps", default="100,200,300,400,500,600,800",
                   help="concurrent stream copies to try")
    p.add_argument("--send-interval", type=float, default=0.1,
                   help="seconds between two sends to a listener in the concurrency steps")
    p.add_argument("--encode-steps", default="2,4,8,12,16,24,32,48,64",
                   help="concurrent re-encodes to try")
    args = p.parse_args(argv)
    source = CORPUS / "scanner" / "real_music_tagged" / SOURCE_NAME
    started = dt.datetime.now(dt.UTC)
    load0 = loadavg()
    nofile = _raise_fd_limit()
    ctx = multiprocessing.get_context("spawn")
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        for sub in ("c", "e", "w"):
            (work / sub).mkdir()
        server = ServerProcess(ctx, work / "media", source)
        try:
            with concurrent.futures.ProcessPoolExecutor(1, mp_context=ctx) as pool:
                pool.submit(os.getpid).result()  # start the worker before measuring
                warm = server.mount("/warm.mp3")
                pool.submit(_capture_many, [warm], 2.0, str(work / "w"), args.bitrate).result()
                part1 = cpu_per_hour(pool, server, args.seconds, args.bitrate, work)
                for r in part1:
                    print(r, flush=True)
                live = {"send_interval": args.send_interval}
                copy_rows, copy_best = concurrency(
                    pool, server, "/copy.mp3",
                    {"metaint": 8192, "titles": [(0.0, "Artist - Title")], **live},
                    [int(x) for x in args.copy_steps.split(",")], args.step_seconds,
                    args.bitrate, work)
                enc_rows, enc_best = concurrency(
                    pool, server, "/enc.aac", {"kind": "aac", "metaint": None, **live},
                    [int(x) for x in args.encode_steps.split(",")], args.step_seconds,
                    args.bitrate, work)
        finally:
            server.close()
    took = (dt.datetime.now(dt.UTC) - started).total_seconds()
    argv_text = " ".join(argv if argv is not None else sys.argv[1:])
    lines = [
        "## recorder", "",
        f"Measured on {started:%Y-%m-%d %H:%M} UTC ({took:.0f} s, load average {load0} at "
        f"the start, {loadavg()} at the end) with:", "",
        "```sh", f".venv/bin/python bench/recorder.py {argv_text}".rstrip(), "```", "",
        "A real Icecast-like server in a process of its own (the test peer "
        "`tests/recorder/streamserver.py`) streams, at real time, the first 20 s of the "
        f"corpus recording `{SOURCE_NAME}` (looped) as MP3 128 kbit/s with ICY metadata "
        "(`icy-metaint` 8192) and as AAC 96 kbit/s ADTS, sending each listener's audio "
        "every 20 ms for the single recordings. Recordings run as threads of one worker "
        "process, as in the recorder (`capture.record_stream`); CPU is that process's "
        "user + system time, measured after a 2 s warm-up capture. Open-file limit of "
        f"the processes: {nofile}.",
        "", "### CPU per hour of recorded audio", "",
        md_table(["recording", "audio (s)", "CPU (s)", "CPU s per audio hour", "reference",
                  "reference CPU s per hour", "ratio"], part1), "",
        f"### Concurrent real-time recordings ({args.step_seconds:g} s each)", "",
        "A step passes when every recording got at least 95 % of its wall time as audio, "
        f"with no error and no reconnect, and they all ended within {LATE_LIMIT:g} s of "
        "their end time. The server sends each listener's audio every "
        f"{args.send_interval:g} s (a few kilobytes at a time, as an Icecast relaying a "
        "source client does). CPU in cores (CPU seconds / wall seconds) for the worker, "
        "the server process and the whole machine.", "",
        "Stream copies (MP3 source):", "",
        md_table(["recordings", "result", "shortest audio (s)", "worker CPU s per audio hour",
                  "CPU worker", "CPU server", "CPU machine", "steal", "why not"], copy_rows), "",
        f"Re-encodes (AAC source -> MP3 {args.bitrate} kbit/s):", "",
        md_table(["recordings", "result", "shortest audio (s)", "worker CPU s per audio hour",
                  "CPU worker", "CPU server", "CPU machine", "steal", "why not"], enc_rows), "",
        f"**Largest passing steps: {copy_best} concurrent stream copies, {enc_best} concurrent "
        "re-encodes** on this 2-core machine (the stream server shares it).",
        f"Load average at the end: {loadavg()}.",
    ]
    section = "\n".join(lines)
    print(section)
    if args.write:
        replace_section("recorder", section.rstrip("\n") + "\n\n")  # where it stands


if __name__ == "__main__":
    main()
