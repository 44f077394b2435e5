"""Helpers of the library page's browser tests: screenshots, layout checks."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from playwright.sync_api import Page

from tests.library.analysislib import drum_loop


def shot(page: Page, tmp_path: Path, name: str) -> Path:
    """Save a full-page screenshot under ``tmp_path/screens`` and print where."""
    path = tmp_path / "screens" / f"{name}.png"
    path.parent.mkdir(exist_ok=True)
    page.screenshot(path=str(path), full_page=True)
    print(f"screenshot: {path}")
    return path


def horizontal_overflow(page: Page) -> dict[str, Any]:
    """How far the document is wider than the window (``overflow`` in CSS px, 0 when it
    fits) and the elements that stick out past its right edge (tag, class, right)."""
    return dict(page.evaluate("""() => {
        const width = document.documentElement.clientWidth;
        const wide = [];
        for (const el of document.body.querySelectorAll('*')) {
            const r = el.getBoundingClientRect();
            if (r.width && r.right > width + 1 && getComputedStyle(el).position !== 'fixed') {
                wide.push({tag: el.tagName, cls: String(el.className), right: Math.round(r.right)});
            }
        }
        return {overflow: Math.max(0, document.documentElement.scrollWidth - width,
                                   document.body.scrollWidth - width),
                width, wide: wide.slice(0, 10)};
    }"""))


def table_columns(page: Page) -> dict[str, Any]:
    """Where the track table's shown columns lie against the box in which the table can
    be seen: ``box`` is the table's own box cut by every ancestor that clips (overflow
    other than visible, scrollbars left out) and by the window; ``head`` the header
    cells shown (label, left, right, ``clipped``: its label wider than its cell) and
    ``cells`` the first data row's shown cells (class, left, right), against ``rows``,
    the rows' scroll container cut the same way. CSS px."""
    return dict(page.evaluate("""() => {
        const table = document.querySelector('.tracktable');
        const seen = (start) => {
            let box = {left: 0, right: document.documentElement.clientWidth};
            for (let el = start; el && el !== document.documentElement; el = el.parentElement) {
                if (el !== start && getComputedStyle(el).overflowX === 'visible') continue;
                const left = el.getBoundingClientRect().left + el.clientLeft;
                box = {left: Math.max(box.left, left),
                       right: Math.min(box.right, left + el.clientWidth)};
            }
            return box;
        };
        const shown = (el) => getComputedStyle(el).display !== 'none'
            && el.getBoundingClientRect().width > 0;
        const headers = table.querySelectorAll('.row.head [role=columnheader]');
        const head = [...headers].filter(shown).map((c) => {
            const r = c.getBoundingClientRect();
            return {label: c.textContent.replace(/ [▲▼]$/, ''), left: r.left, right: r.right,
                    clipped: c.scrollWidth > c.clientWidth + 1};
        });
        const first = table.querySelector('.rows .row[data-track-id]');
        const cells = first ? [...first.children].filter(shown).map((c) => {
            const r = c.getBoundingClientRect();
            return {cls: c.className, left: r.left, right: r.right};
        }) : [];
        return {box: seen(table), rows: seen(table.querySelector('.rows')), head, cells,
                window: document.documentElement.clientWidth};
    }"""))


#: Init script that counts the answers the page has read: the URL of each response whose
#: body a script has read (``text()`` or ``json()``) is added to ``window.__answered`` in a
#: task of its own, that is once the code that awaited the body, and the rendering it set
#: off (Preact renders in microtasks), has run.
COUNT_ANSWERS = """(() => {
    const answered = window.__answered = [];
    for (const name of ['text', 'json']) {
        const read = Response.prototype[name];
        Response.prototype[name] = function () {
            const url = this.url;
            return read.call(this).then((body) => {
                setTimeout(() => answered.push(url), 0);
                return body;
            });
        };
    }
})();"""


def count_answers(page: Page) -> None:
    """Count the answers the page reads from now on (:data:`COUNT_ANSWERS`); call before
    ``page.goto``. :func:`wait_answers` then waits for them."""
    page.add_init_script(COUNT_ANSWERS)


def answers(page: Page, part: str) -> int:
    """How many answers of URLs that contain `part` the page has read and acted on (see
    :data:`COUNT_ANSWERS`)."""
    n: int = page.evaluate("(part) => window.__answered.filter((u) => u.includes(part)).length",
                           part)
    return n


def wait_answers(page: Page, part: str, count: int) -> None:
    """Wait until the page has read `count` answers of URLs that contain `part` and has
    acted on them (see :data:`COUNT_ANSWERS`)."""
    page.wait_for_function(
        "([part, count]) => window.__answered.filter((u) => u.includes(part)).length >= count",
        arg=[part, count])


def loops_with_a_copy(root: Path) -> Path:
    """Generated drum loops at 120, 122 and 124 BPM in `root`, and a copy of the first in
    ``root/copies`` (a duplicate group): four tracks. Returns `root`."""
    for bpm in (120, 122, 124):
        drum_loop(root / f"Loop {bpm}.wav", bpm)
    (root / "copies").mkdir()
    shutil.copyfile(root / "Loop 120.wav", root / "copies" / "Loop 120 copy.wav")
    return root
