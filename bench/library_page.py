"""Benchmark of the library's page in Chromium on a library of 100,000 tracks.

Builds a SQLite library of 100,000 generated tracks (``bench/playlists.py``'s
generator), starts ``taperoom library serve`` on it and opens the page in Debian's
headless Chromium through Playwright. It measures, over ``--runs`` runs each:

1. **first render**: from the start of navigation to the first frame painted after
   the track table's first page arrived (the page fires ``tracks-painted``; the time
   is taken in the next ``requestAnimationFrame``), a fresh page each run;
2. **search answer painted**: from a keystroke in the search box (the box's input
   event) to the first frame painted after the answer for that text arrived, for
   words of the generated titles;
3. the reference, in the same page: a ``fetch('/health')`` round trip followed by a
   frame, i.e. what any answer painted costs before the work of the page and of the
   search; the figures are also given as a ratio of it.

Targets (issue 17): first render under 1 s, search answer painted under 150 ms.

Usage::

    .venv/bin/python bench/library_page.py [--runs 10] [--write]

``--write`` replaces the "library page" section of ``BENCHMARKS.md``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import playlists as generator
from common import loadavg, md_table, ms, pct, replace_section

CHROMIUM = "/usr/bin/chromium"
N_TRACKS = 100_000
WORDS = ["night", "echo", "velvet", "storm", "ocean", "pulse", "neon", "drift"]

RECORD = """() => {
  window.__painted = [];
  window.addEventListener('tracks-painted', (e) => requestAnimationFrame(() =>
    window.__painted.push({t: performance.now(), q: e.detail.query})));
}"""

SEARCH = """async (word) => {
  const box = document.querySelector('input.search');
  const before = window.__painted.length;
  const t0 = performance.now();
  box.value = word;
  box.dispatchEvent(new Event('input', {bubbles: true}));
  const wanted = JSON.stringify(word.trim());
  while (performance.now() - t0 < 10000) {
    const hit = window.__painted.slice(before).find((p) => p.q.includes(wanted));
    if (hit) return hit.t - t0;
    await new Promise((r) => setTimeout(r, 2));
  }
  throw new Error(`no answer painted for ${word}`);
}"""

REFERENCE = """async () => {
  const t0 = performance.now();
  await (await fetch('/health')).text();
  await new Promise((r) => requestAnimationFrame(r));
  return performance.now() - t0;
}"""


def measure(url: str, runs: int) -> dict[str, list[float]]:
    """Times in ms of `runs` first renders, searches and reference round trips."""
    from playwright.sync_api import sync_playwright

    out: dict[str, list[float]] = {"first render": [], "search painted": [], "reference": []}
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM,
                                    args=["--headless=new", "--no-sandbox", "--disable-gpu"])
        try:
            for run in range(runs + 1):  # the first run warms the caches and is dropped
                page = browser.new_page(viewport={"width": 1400, "height": 900})
                page.add_init_script(f"({RECORD})()")
                page.goto(url + "/")
                page.wait_for_function("window.__painted && window.__painted.length > 0",
                                       timeout=30_000)
                first = page.evaluate("window.__painted[0].t")
                word = WORDS[run % len(WORDS)]
                other = WORDS[(run + 1) % len(WORDS)]
                # a prefix as typed, a whole word, two words
                searches = [page.evaluate(SEARCH, text)
                            for text in (word[:3], word, f"{word} {other}")]
                reference = [page.evaluate(REFERENCE) for _ in range(3)]
                page.close()
                if run == 0:
                    continue
                out["first render"].append(first)
                out["search painted"].extend(searches)
                out["reference"].extend(reference)
        finally:
            browser.close()
    return out


def report(times: dict[str, list[float]]) -> str:
    """Markdown of the figures (`times` in ms), with the reference ratio."""
    ref = statistics.median(times["reference"])
    rows = [[name, ms(statistics.median(v) / 1000), ms(pct(v, 95) / 1000), ms(max(v) / 1000),
             f"{statistics.median(v) / ref:.1f}x"] for name, v in times.items()]
    return md_table(["measure", "median (ms)", "p95 (ms)", "max (ms)", "× reference"], rows)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=10)
    ap.add_argument("--write", action="store_true")
    args = ap.parse_args()
    generator.N_TRACKS = N_TRACKS
    with tempfile.TemporaryDirectory(prefix="taperoom-page-") as tmp:
        work = Path(tmp)
        database = work / "library.db"
        print(f"building {N_TRACKS} tracks ...", flush=True)
        generator.build_library(database, seed=17)
        with generator.Server(work, database) as server:
            times = measure(f"http://127.0.0.1:{server.port}", args.runs)
    table = report(times)
    print(table)
    first = statistics.median(times["first render"])
    search = statistics.median(times["search painted"])
    print(f"first render {first:.0f} ms (target < 1000), search painted {search:.0f} ms "
          f"(target < 150); load {loadavg()}")
    if args.write:
        when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
        replace_section("library page", (
            f"## library page\n\nMeasured on {when} with:\n\n```sh\n.venv/bin/python "
            f"bench/library_page.py --runs {args.runs} --write\n```\n\n{N_TRACKS} tracks, "
            f"Chromium headless, {args.runs} runs; load {loadavg()}. Targets: first render "
            f"under 1 s, search answer painted under 150 ms.\n\n{table}\n"))


if __name__ == "__main__":
    main()
