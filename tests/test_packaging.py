"""Packaging: ``pip install 'taperoom[all]'`` installs what every app needs."""

from __future__ import annotations

import tomllib

from packaging.requirements import Requirement

from taperoom.apps import APPS
from tests.conftest import ROOT


def _extras() -> dict[str, list[str]]:
    with open(ROOT / "pyproject.toml", "rb") as f:
        project = tomllib.load(f)["project"]
    assert project["name"] == "taperoom"
    extras: dict[str, list[str]] = project["optional-dependencies"]
    return extras


def _expand(extras: dict[str, list[str]], name: str, seen: frozenset[str] = frozenset()
            ) -> set[str]:
    """The requirements of extra `name`, with ``taperoom[...]`` references followed."""
    out: set[str] = set()
    for line in extras[name]:
        req = Requirement(line)
        if req.name == "taperoom":
            for extra in req.extras - seen:
                out |= _expand(extras, extra, seen | {name})
        else:
            out.add(str(req))
    return out


def test_all_extra_installs_every_app() -> None:
    """The ``all`` extra holds every requirement of each app's extra, and the ``dev``
    extra (what ``make test`` installs) builds on it."""
    extras = _extras()
    assert set(APPS) <= set(extras)
    every = _expand(extras, "all")
    for app in APPS:
        missing = _expand(extras, app) - every
        assert not missing, (app, missing)
    assert every <= _expand(extras, "dev")
