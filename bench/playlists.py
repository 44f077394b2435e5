"""Latency of a 1,000-track playlist and of a smart-playlist refresh over 10,000 tracks.

Builds a library database (SQLite, migrated to head) with 10,000 tracks of varied
fields (20 genres, BPM 70-180, every key and mode, energy, danceability, ratings,
play counts and last plays, comments, dates added over three years), a static
playlist of 1,000 of them and a smart playlist with nested criteria, then starts
the real app (``taperoom library serve``: uvicorn, one worker, on 127.0.0.1) and
times, on one keep-alive connection, requests of four kinds in alternating
blocks:

* ``GET /api/playlists/{id}`` of the 1,000-track playlist, beside its reference
  ``GET /api/tracks?limit=1000`` (the same number of track objects from the same
  server);
* ``POST /api/playlists/{id}/refresh`` of the smart playlist, beside its
  reference: the same SQL (:func:`taperoom.playlists.criteria_sql.track_ids_query`,
  compiled for SQLite) run with plain :mod:`sqlite3` in this process.

Targets (issue 13): p99 under 50 ms for both. ``--write`` replaces the
``## playlists`` section of BENCHMARKS.md (with the date, the commit and the
command). Run it as ``nice -n 10 .venv/bin/python bench/playlists.py --write``.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import sqlite3
import subprocess
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import (
    free_port,
    health_ok,
    md_table,
    measured_on,
    ms,
    pct,
    replace_section,
    spawn_server,
    stop_server,
    wait_ready,
)

GENRES = ["House", "Deep House", "Tech House", "Techno", "Minimal", "Trance", "Progressive",
          "Drum & Bass", "Dubstep", "Breaks", "Electro", "Disco", "Funk", "Hip-Hop", "Garage",
          "Ambient", "Downtempo", "Electronica", "Acid", "Hard Techno"]
WORDS = ["night", "shadow", "echo", "pulse", "drift", "neon", "velvet", "storm", "ocean",
         "signal", "orbit", "ember", "mirage", "horizon", "fever", "static", "glow", "tide"]
#: The smart playlist of the refresh: nested any/all groups, a negation, a text
#: criterion and harmonic/tempo criteria.
SMART_CRITERIA = {
    "any": [
        {"all": [{"genres": ["House", "Deep House", "Tech House"]},
                 {"bpm_near": {"bpm": 124, "percent": 4, "half_double": True}},
                 {"not": {"title_contains": "remix"}}]},
        {"all": [{"compatible_with_key": "8A"}, {"energy_min": 0.6},
                 {"any": [{"rating_min": 4}, {"play_count_min": 10}]}]},
    ],
    "not": {"genres": ["Ambient"]},
    "sort_by": "bpm", "sort_order": "asc",
}
N_TRACKS = 10_000
N_STATIC = 1_000


def build_library(database: Path, seed: int) -> tuple[str, str, int]:
    """Create the database; returns (static playlist id, smart playlist id, smart size)."""
    from sqlalchemy import insert

    from taperoom.db import transaction
    from taperoom.library import models
    from taperoom.library.context import build_services
    from taperoom.library.settings import LibrarySettings
    from taperoom.playlists.service import NewPlaylist

    rng = random.Random(seed)
    settings = LibrarySettings(_env_file=None, database_path=database,  # type: ignore[call-arg]
                               scan_on_startup=False, file_watcher_enabled=False,
                               analyze_on_scan=False, engine_link_enabled=False)
    ctx = build_services(settings, lead=False)
    try:
        now = models.utcnow()
        rows: list[dict[str, Any]] = []
        for i in range(N_TRACKS):
            genre = rng.choice(GENRES)
            artist = f"{rng.choice(WORDS).title()} {rng.choice(WORDS).title()}"
            title = " ".join(rng.choice(WORDS) for _ in range(rng.randint(1, 3))).title()
            if rng.random() < 0.15:
                title += " (Remix)"
            played = rng.random() < 0.6
            rows.append({
                "id": models.new_id(), "file_path": f"/music/{genre}/{artist}/{i:05d}.mp3",
                "relative_path": f"{genre}/{artist}/{i:05d}.mp3", "file_size": 8_000_000,
                "title": title, "artist": artist, "album": f"{rng.choice(WORDS).title()} EP",
                "genre": genre, "year": rng.randint(1990, 2025),
                "comment": rng.choice(["", "warm-up", "peak time", "closing", "vinyl rip"]),
                "duration_seconds": rng.uniform(180, 540), "sample_rate": 44100,
                "bit_rate": rng.choice([192, 256, 320]), "channels": 2,
                "bpm": round(rng.uniform(70, 180), 2), "musical_key": rng.randrange(12),
                "mode": rng.randrange(2), "energy": rng.random(),
                "danceability": rng.random(), "valence": rng.random(),
                "arousal": rng.random(), "rating": rng.randint(0, 5),
                "play_count": rng.randint(1, 40) if played else 0,
                "last_played": now - timedelta(days=rng.uniform(0, 400)) if played else None,
                "date_added": now - timedelta(days=rng.uniform(0, 1100)),
                "date_analyzed": now if rng.random() < 0.8 else None,
                "is_missing": rng.random() < 0.01,
            })
        with transaction(ctx.db) as s:
            s.execute(insert(models.Track), rows)
        static = ctx.playlists.create(NewPlaylist(name="Static 1000"))["id"]
        chosen = [r["id"] for r in rng.sample(rows, N_STATIC)]
        ctx.playlists.add_tracks(static, chosen)
        smart = ctx.playlists.create(NewPlaylist(name="Nested", type="smart",
                                                 criteria=SMART_CRITERIA))["id"]
        size = len(ctx.playlists.get(smart)["tracks"])
    finally:
        ctx.close()
    return static, smart, size


def reference_sql() -> str:
    """The smart playlist's query, compiled for SQLite with its values inlined."""
    from sqlalchemy.dialects import sqlite

    from taperoom.playlists.criteria import parse_criteria
    from taperoom.playlists.criteria_sql import track_ids_query

    query = track_ids_query(parse_criteria(SMART_CRITERIA))
    return str(query.compile(dialect=sqlite.dialect(), compile_kwargs={"literal_binds": True}))


class Server:
    """``taperoom library serve`` on a free port, on an existing database."""

    def __init__(self, workdir: Path, database: Path) -> None:
        self.port = free_port()
        self.workdir = workdir
        self.cmd = [sys.executable, "-m", "taperoom", "library", "serve", "--host",
                    "127.0.0.1", "--port", str(self.port)]
        self.env = {**os.environ, "DATABASE_PATH": str(database), "SCAN_ON_STARTUP": "false",
                    "FILE_WATCHER_ENABLED": "false", "LOG_LEVEL": "warning",
                    "ANALYZE_ON_SCAN": "false", "DATA_DIR": str(workdir / "data")}
        self.proc: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> Server:
        log = self.workdir / "server.log"
        self.proc = spawn_server(self.cmd, self.env, self.workdir, log)
        wait_ready(self.proc, log, lambda: health_ok(self.port))
        return self

    def __exit__(self, *_: object) -> None:
        stop_server(self.proc)


def timed_http(conn: http.client.HTTPConnection, method: str, path: str) -> tuple[float, int]:
    """One request; (seconds, bytes of the answer). Raises on a status other than 200."""
    t0 = time.perf_counter()
    conn.request(method, path, body=b"" if method == "POST" else None)
    response = conn.getresponse()
    body = response.read()
    elapsed = time.perf_counter() - t0
    if response.status != 200:
        raise RuntimeError(f"{method} {path}: {response.status} {body[:300]!r}")
    return elapsed, len(body)


def measure(port: int, database: Path, static: str, smart: str, n: int, block: int
            ) -> dict[str, list[float]]:
    """Latencies of the four kinds, `n` each, in alternating blocks of `block`."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    raw = sqlite3.connect(database)
    sql = reference_sql()
    kinds: dict[str, Any] = {
        "get": lambda: timed_http(conn, "GET", f"/api/playlists/{static}")[0],
        "tracks": lambda: timed_http(conn, "GET", "/api/tracks?limit=1000")[0],
        "refresh": lambda: timed_http(conn, "POST", f"/api/playlists/{smart}/refresh")[0],
        "sql": lambda: _timed_sql(raw, sql),
    }
    checks = json.loads(_body(conn, "GET", f"/api/playlists/{static}"))
    assert len(checks["tracks"]) == N_STATIC, len(checks["tracks"])
    assert len(json.loads(_body(conn, "GET", "/api/tracks?limit=1000"))["data"]) == N_STATIC
    for fn in kinds.values():  # warm-up
        for _ in range(10):
            fn()
    out: dict[str, list[float]] = {k: [] for k in kinds}
    done = 0
    while done < n:
        for name, fn in kinds.items():
            for _ in range(min(block, n - done)):
                out[name].append(fn())
        done += block
    conn.close()
    raw.close()
    return out


def _body(conn: http.client.HTTPConnection, method: str, path: str) -> bytes:
    conn.request(method, path)
    return conn.getresponse().read()


def _timed_sql(raw: sqlite3.Connection, sql: str) -> float:
    t0 = time.perf_counter()
    rows = raw.execute(sql).fetchall()
    elapsed = time.perf_counter() - t0
    assert rows
    return elapsed


def report(lat: dict[str, list[float]], smart_size: int, n: int, block: int,
           load: tuple[tuple[float, ...], tuple[float, ...]], command: str) -> str:
    """The ``## playlists`` section."""
    def row(label: str, key: str, ref: str | None) -> list[str]:
        values = lat[key]
        cells = [label, ms(pct(values, 50)), ms(pct(values, 90)), ms(pct(values, 99)),
                 ms(max(values))]
        if ref is None:
            return [*cells, "1.0×", "1.0×"]
        return [*cells, f"{pct(values, 50) / pct(lat[ref], 50):.1f}×",
                f"{pct(values, 99) / pct(lat[ref], 99):.1f}×"]

    table = md_table(
        ["request", "p50", "p90", "p99", "max", "p50 / reference p50", "p99 / reference p99"],
        [row("`GET /api/tracks?limit=1000` (reference of the next row)", "tracks", None),
         row("`GET /api/playlists/{id}` (1,000 tracks)", "get", "tracks"),
         row("the smart playlist's SQL with plain `sqlite3` (reference of the next row)",
             "sql", None),
         row(f"`POST /api/playlists/{{id}}/refresh` (10,000 tracks, {smart_size} match)",
             "refresh", "sql")])
    get99, refresh99 = pct(lat["get"], 99), pct(lat["refresh"], 99)
    met = get99 < 0.05 and refresh99 < 0.05
    return (
        f"## playlists\n\n{measured_on(load, '2 shared cores')} with:\n\n"
        f"```sh\n{command}\n```\n\n"
        f"`bench/playlists.py` builds a SQLite library of {N_TRACKS:,} tracks (20 genres, "
        "BPM 70-180, every key, energy, ratings, play counts, 1 % missing), a static "
        f"playlist of {N_STATIC:,} of them and a smart playlist with nested criteria "
        "(any of two all-groups: house genres with BPM near 124 ± 4 % including half and "
        "double time and not a remix, or harmonically compatible with 8A with energy "
        "≥ 0.6 and a rating ≥ 4 or 10+ plays; never Ambient; sorted by BPM). Server: "
        "`taperoom library serve` (uvicorn, 1 worker) on 127.0.0.1; client: `http.client` "
        f"on one keep-alive connection; {n} requests of each kind in alternating blocks "
        f"of {block} after 10 warm-up requests each; times in ms. A refresh that finds the "
        "stored tracks current writes nothing (the steady state of a refresh: the "
        "evaluation and the comparison).\n\n"
        f"{table}\n\n"
        f"Targets: p99 under 50 ms for both: **{'met' if met else 'missed'}** "
        f"(`GET` {ms(get99)} ms, refresh {ms(refresh99)} ms).")


def write(section: str) -> None:
    """Replace (or append) the ``## playlists`` section of BENCHMARKS.md in place."""
    replace_section("playlists", section.strip() + "\n\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=300, help="requests of each kind")
    parser.add_argument("--block", type=int, default=50, help="requests per block")
    parser.add_argument("--seed", type=int, default=13)
    parser.add_argument("--write", action="store_true", help="write BENCHMARKS.md")
    args = parser.parse_args()
    start_load = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="bench-playlists-") as tmp:
        work = Path(tmp)
        database = work / "data" / "library.db"
        database.parent.mkdir(parents=True)
        t0 = time.perf_counter()
        static, smart, size = build_library(database, args.seed)
        print(f"library built in {time.perf_counter() - t0:.1f} s; the smart playlist "
              f"holds {size} tracks", flush=True)
        with Server(work, database) as server:
            assert server.proc is not None
            lat = measure(server.port, database, static, smart, args.n, args.block)
    command = "nice -n 10 .venv/bin/python bench/playlists.py" + (" --write" if args.write
                                                                  else "")
    section = report(lat, size, args.n, args.block, (start_load, os.getloadavg()), command)
    print(section)
    if args.write:
        write(section)


if __name__ == "__main__":
    main()
