"""Fixtures of the recorder tests: settings on tmp_path, the built services, a real server."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from taperoom.recorder.settings import RecorderSettings
from tests.conftest import DatabaseTemplates, LiveServer

# the real protocol peers of the recorder tests, as fixtures of every test module
from tests.recorder.sshserver import sftp_server  # noqa: F401
from tests.recorder.streamserver import stream_media, stream_server  # noqa: F401


@pytest.fixture
def rec_settings(tmp_path: Path, db_templates: DatabaseTemplates,
                 empty_database: bool) -> Callable[..., RecorderSettings]:
    """Factory of recorder settings with every folder under tmp_path (keyword overrides).

    The SQLite database ``DATA_DIR/recorder.db``, when it does not exist yet, starts
    as a copy of the migrated template (empty for tests marked ``empty_database``).
    """

    def make(**overrides: Any) -> RecorderSettings:
        values: dict[str, Any] = {
            "data_dir": tmp_path / "data",
            "recordings_dir": tmp_path / "recordings",
            "artwork_dir": tmp_path / "artwork",
            "ssh_config_dir": tmp_path / "config",
            "log_dir": tmp_path / "logs",
            "tz": "America/Denver",
            "min_free_disk_mb": 1.0,
            "metrics_interval_seconds": 0.5,
            # the stream servers of these tests are on 127.0.0.1: opt in to loopback
            "stream_allowed_networks": "127.0.0.0/8,::1/128",
        }
        values.update(overrides)
        settings = RecorderSettings(_env_file=None, **values)  # type: ignore[call-arg]
        if not settings.database_url.get_secret_value() and not empty_database:
            db_templates.copy("recorder", Path(settings.data_dir) / "recorder.db")
        return settings

    return make


@pytest.fixture
def rec_services(rec_settings: Callable[..., RecorderSettings]) -> Iterator[Any]:
    """The recorder's services built on tmp_path (not started; the server starts them)."""
    from taperoom.recorder.context import build_services

    services = build_services(rec_settings())
    try:
        yield services
    finally:
        services.close()


@pytest.fixture
def rec_server(rec_services: Any, live_server: Callable[[Any], LiveServer]) -> LiveServer:
    """The recorder app on a real uvicorn on 127.0.0.1 (``.url``), on `rec_services`."""
    from taperoom.recorder.app import create_app

    return live_server(create_app(services=rec_services))
