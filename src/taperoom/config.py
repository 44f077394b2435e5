"""Settings helpers shared by every app: base settings class and logging."""

from __future__ import annotations

import logging
import os

from pydantic_settings import BaseSettings, SettingsConfigDict


class AppSettings(BaseSettings):
    """Base of each app's settings.

    Values come from the environment (names as in the contracts, e.g. ``AUDIO_DIR``,
    ``PORT``), then from a ``.env`` file in the working directory, then from the
    defaults. Unknown variables are ignored so that one ``.env`` can serve all apps.
    """

    model_config = SettingsConfigDict(
        env_file=".env", env_file_encoding="utf-8", extra="ignore", case_sensitive=False
    )


def setup_logging(level: str | None = None) -> None:
    """Configure the root logger once, from ``LOG_LEVEL`` unless `level` is given."""
    name = (level or os.environ.get("LOG_LEVEL") or "INFO").upper()
    logging.basicConfig(
        level=getattr(logging, name, logging.INFO),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
