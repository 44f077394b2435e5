"""The ephemeral app's composition root: services built once, closed in reverse."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from taperoom.ephemeral.app import create_app
from taperoom.ephemeral.context import EphemeralServices, build_services
from taperoom.ephemeral.settings import EphemeralSettings
from tests.wavgen import tone, write_wav


def _open_paths() -> list[Path]:
    """Files this process holds open (``/proc/self/fd``)."""
    out = []
    for fd in os.listdir("/proc/self/fd"):
        try:
            out.append(Path(os.readlink(f"/proc/self/fd/{fd}")))
        except OSError:
            continue
    return out


def _meta_open(settings: EphemeralSettings) -> bool:
    tracks = settings.metadata_dir.resolve() / "tracks"
    return any(p.parent == tracks for p in _open_paths())


def test_services_share_one_store_and_close_their_files_and_threads(
        eph_settings: Callable[..., EphemeralSettings]) -> None:
    """build_services gives the service the root's store; close() shuts the wear threads
    and closes the metadata files the store keeps open, and may be called twice."""
    settings = eph_settings()
    settings.audio_dir.mkdir(parents=True)
    write_wav(settings.audio_dir / "a.wav", tone(1.0, 8000, 1), rate=8000)
    services = build_services(settings)
    assert isinstance(services, EphemeralServices)
    assert services.service.store is services.store
    with pytest.raises(AttributeError):
        services.store = services.store  # type: ignore[misc]
    assert services.wear_threads.submit(services.service.degrade, "a.wav", 1).result(
        ).play_count == 1
    assert _meta_open(settings)
    services.close()
    assert not _meta_open(settings)
    with pytest.raises(RuntimeError):
        services.wear_threads.submit(print)
    services.close()


def test_app_closes_the_services_it_built_but_not_given_ones(
        eph_settings: Callable[..., EphemeralSettings],
        live_server: Callable[[Any], Any]) -> None:
    """An app built from settings owns its services and closes them when it stops; an app
    given services leaves them to their owner."""
    settings = eph_settings(degrade_rate_limit="off")
    settings.audio_dir.mkdir(parents=True)
    write_wav(settings.audio_dir / "a.wav", tone(1.0, 8000, 1), rate=8000)

    given = build_services(settings)
    app = create_app(services=given)
    assert app.state.services is given
    srv = live_server(app)
    r = httpx.post(f"{srv.url}/degrade/a.wav", json={"segment_index": 0}, timeout=10)
    assert r.json() == {"success": True, "segment_index": 0, "play_count": 1}
    assert _meta_open(settings)
    srv.__exit__()
    assert _meta_open(settings)
    assert given.wear_threads.submit(given.service.degrade, "a.wav", 0).result(
        ).play_count == 2
    given.close()
    assert not _meta_open(settings)

    app = create_app(settings)
    srv = live_server(app)
    r = httpx.post(f"{srv.url}/degrade/a.wav", json={"segment_index": 0}, timeout=10)
    assert r.json()["play_count"] == 3
    assert _meta_open(settings)
    srv.__exit__()
    assert not _meta_open(settings)
    with pytest.raises(RuntimeError):
        app.state.services.wear_threads.submit(print)
