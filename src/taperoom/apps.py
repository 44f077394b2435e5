"""Registry of the Taperoom apps that ``taperoom serve`` runs."""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass


@dataclass(frozen=True)
class AppSpec:
    """How to start one app.

    Attributes
    ----------
    name : str
        App name (CLI sub-command).
    factory : str
        ``module:function`` building the ASGI app from the environment.
    default_port : int
        Port used when neither ``--port`` nor ``<NAME>_PORT`` / ``PORT`` says otherwise.
    requires : str
        A module of the app's optional extra; the app is skipped by ``taperoom serve``
        when it is not installed.
    """

    name: str
    factory: str
    default_port: int
    requires: str

    @property
    def installed(self) -> bool:
        """True when the app's optional dependencies are importable."""
        return importlib.util.find_spec(self.requires) is not None


APPS: dict[str, AppSpec] = {
    "ephemeral": AppSpec("ephemeral", "taperoom.ephemeral.api:app_from_env", 5000, "limits"),
    "library": AppSpec("library", "taperoom.library.app:app_from_env", 12047, "sqlalchemy"),
    "recorder": AppSpec("recorder", "taperoom.recorder.app:app_from_env", 8666, "apscheduler"),
}
