"""Registry of the Taperoom apps that ``taperoom serve`` runs."""

from __future__ import annotations

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
    """

    name: str
    factory: str
    default_port: int


APPS: dict[str, AppSpec] = {
    "ephemeral": AppSpec("ephemeral", "taperoom.ephemeral.api:app_from_env", 5000),
    "library": AppSpec("library", "taperoom.library.app:app_from_env", 12047),
}
