"""Helpers shared by the benchmark scripts: ports, server processes, process CPU,
percentiles, BENCHMARKS.md."""

from __future__ import annotations

import contextlib
import http.client
import math
import os
import platform
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BENCHMARKS = ROOT / "BENCHMARKS.md"

CLK_TCK = os.sysconf("SC_CLK_TCK")


HEADER = """# Benchmarks

Figures in this file come from the scripts in `bench/`, run against a real server
process (uvicorn, as `taperoom ... serve` starts it) on loopback. Absolute times
depend on the machine, so every figure is shown next to a reference measured in
the same run on the same server (a trivial JSON route) and as a ratio to it.

Machine: {cores} CPU cores ({cpu}), {mem} GB RAM, Linux {kernel}, Python {python}; a
virtual machine whose cores are shared with other programs and with the hypervisor
(steal). The load generator runs on the same cores as the server; the CPU time of
the server, of the load generator and of the whole machine is reported.
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def spawn_server(cmd: list[str], env: dict[str, str], cwd: Path, log: Path, *,
                 engine_link: bool = False) -> subprocess.Popen[bytes]:
    """Start `cmd` in a session of its own (so that :func:`stop_server` can kill all of it),
    its output going to `log`.

    A library server links to no audio engine (``ENGINE_LINK_ENABLED=false``, whatever
    `env` says) unless `engine_link`: a benchmark that is not about the link must not
    spend its time trying to reach ``ws://localhost:8080``.
    """
    env = {**env, "ENGINE_LINK_ENABLED": "true" if engine_link else "false"}
    with open(log, "wb") as out:
        return subprocess.Popen(cmd, env=env, cwd=cwd, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)


def wait_ready(proc: subprocess.Popen[bytes], log: Path, ready: Callable[[], bool],
               timeout: float = 60.0) -> None:
    """Poll `ready` every 0.2 s until it is true.

    Raises
    ------
    RuntimeError
        When `proc` exits first (with the tail of `log`), or after `timeout` s (the
        server is stopped first).
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited: {log.read_text()[-2000:]}")
        if ready():
            return
        time.sleep(0.2)
    stop_server(proc)
    raise RuntimeError(f"server did not start within {timeout:g} s")


def health_ok(port: int) -> bool:
    """Whether ``GET /health`` on 127.0.0.1:`port` answers 200 (False when it cannot
    be reached)."""
    with contextlib.suppress(OSError, http.client.HTTPException):
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
        conn.request("GET", "/health")
        if conn.getresponse().status == 200:
            conn.close()
            return True
    return False


def stop_server(proc: subprocess.Popen[bytes] | None) -> None:
    """SIGTERM a server started by :func:`spawn_server` if it runs; after 15 s, SIGKILL
    its whole session."""
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def descendants(pid: int) -> list[int]:
    """`pid` and every process below it (from ``/proc/*/stat``)."""
    parent_of: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2:].split()
        parent_of[int(entry)] = int(fields[1])
    found = [pid]
    frontier = [pid]
    while frontier:
        p = frontier.pop()
        kids = [c for c, pp in parent_of.items() if pp == p]
        found += kids
        frontier += kids
    return found


def _cpu_ticks(pids: list[int], fields: slice) -> int:
    """Sum of some time fields (clock ticks) of ``/proc/<pid>/stat`` over `pids`;
    processes that have ended meanwhile count 0."""
    total = 0
    for pid in pids:
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            continue
        total += sum(int(x) for x in stat[stat.rindex(")") + 2:].split()[fields])
    return total


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU seconds of `pids` (``/proc/<pid>/stat``)."""
    return _cpu_ticks(pids, slice(11, 13)) / CLK_TCK  # utime, stime


def tree_cpu_seconds(pid: int) -> float:
    """CPU seconds of `pid` and every process it started, live or ended.

    User + system time of `pid` and its live descendants, plus the time of the
    children each of them has already reaped (``cutime``/``cstime`` of
    ``/proc/<pid>/stat``), so that worker processes a pool has ended (and that a
    fork server reaped) still count.
    """
    # utime, stime, cutime, cstime
    return _cpu_ticks([pid, *descendants(pid)], slice(11, 15)) / CLK_TCK


def machine_cpu() -> tuple[float, float]:
    """Busy and stolen CPU seconds of the whole machine since boot (``/proc/stat``)."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = fields[:8]
    return (user + nice + system + irq + softirq) / CLK_TCK, steal / CLK_TCK


def ms(x: float) -> str:
    if x != x:  # NaN
        return "-"
    return f"{x * 1000:.2f}" if x < 0.1 else f"{x * 1000:.0f}"


def md_table(head: list[str], rows: list[list[str]]) -> str:
    out = ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
    out += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(out)


def machine() -> dict[str, str]:
    cpu = platform.processor() or "unknown CPU"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    mem = "?"
    with contextlib.suppress(OSError, ValueError, IndexError):
        kb = int(Path("/proc/meminfo").read_text().split()[1])
        mem = f"{kb / 1024 / 1024:.0f}"
    return {"cpu": cpu, "cores": str(os.cpu_count()), "mem": mem, "kernel": platform.release(),
            "python": platform.python_version()}


def pct(values: list[float], p: float) -> float:
    """Percentile `p` (0-100) of `values`, nearest rank; NaN when empty."""
    if not values:
        return float("nan")
    s = sorted(values)
    k = max(0, min(len(s) - 1, math.ceil(p / 100 * len(s)) - 1))
    return s[k]


def loadavg() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def head_commit() -> str:
    """Short hash of the checked-out commit ("unknown" outside a git clone)."""
    return subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT,
                          capture_output=True, text=True).stdout.strip() or "unknown"


def measured_on(load: tuple[tuple[float, ...], ...], note: str = "") -> str:
    """The first words of a section: "Measured on <UTC time> at commit `<hash>` (load
    average <first> at the start, <last> at the end[; <note>])", `load` being
    :func:`os.getloadavg` at the start and at the end. When ``src/`` has uncommitted
    changes, "(with uncommitted changes in src/)" follows the commit."""
    loads = [" ".join(f"{v:.2f}" for v in la) for la in load]
    when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    dirty = subprocess.run(["git", "status", "--porcelain", "--", "src"], cwd=ROOT,
                           capture_output=True, text=True).stdout.strip()
    return (f"Measured on {when} at commit `{head_commit()}`"
            f"{' (with uncommitted changes in src/)' if dirty else ''} (load average "
            f"{loads[0]} at the start, {loads[-1]} at the end{'; ' + note if note else ''})")


def replace_section(name: str, block: str) -> None:
    """Replace the ``## <name>`` section of BENCHMARKS.md where it stands with `block`
    (its heading included, ending with a blank line), or append `block`; the rest of
    the file is kept as it is (created as ``# Benchmarks`` when missing)."""
    text = BENCHMARKS.read_text(encoding="utf-8") if BENCHMARKS.is_file() else "# Benchmarks\n"
    start = text.find(f"\n## {name}\n")
    if start >= 0:
        end = text.find("\n## ", start + 1)
        text = text[:start + 1] + block + (text[end + 1:] if end >= 0 else "")
    else:
        text = text.rstrip("\n") + "\n\n" + block
    BENCHMARKS.write_text(text.rstrip("\n") + "\n", encoding="utf-8")


def write_section(name: str, section: str) -> None:
    """Replace the ``## <name>`` section of BENCHMARKS.md, keeping the header and the others."""
    text = BENCHMARKS.read_text(encoding="utf-8") if BENCHMARKS.exists() else ""
    head, _, _ = text.partition("\n## ")
    header = head.strip() if text.startswith("# ") else HEADER.format(**machine()).strip()
    sections: list[tuple[str, str]] = []
    current: list[str] | None = None
    title = ""
    for line in text.splitlines():
        if line.startswith("## "):
            if current is not None:
                sections.append((title, "\n".join(current).strip()))
            title, current = line[3:].strip(), [line]
        elif current is not None:
            current.append(line)
    if current is not None:
        sections.append((title, "\n".join(current).strip()))
    sections = [(t, s) for t, s in sections if t.split()[0].lower() != name]
    sections.append((name, section.strip()))
    sections.sort(key=lambda ts: ts[0].lower())
    body = header + "\n\n" + "\n\n".join(s for _, s in sections) + "\n"
    BENCHMARKS.write_text(body, encoding="utf-8")
