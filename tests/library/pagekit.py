"""Helpers of the library page's browser tests: screenshots, layout checks."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from playwright.sync_api import Page


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
