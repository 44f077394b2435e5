"""Registry of the Taperoom apps that ``taperoom serve`` runs."""

from __future__ import annotations

import importlib
import importlib.util
from dataclasses import dataclass, field
from typing import Any


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
    preflight : str
        ``module:function`` run before the server starts (it reads the environment
        and raises :class:`~taperoom.errors.TaperoomError` when the app must not
        start); empty for none.
    server : dict
        Keyword arguments of ``uvicorn.Config`` for this app's server.
    """

    name: str
    factory: str
    default_port: int
    requires: str
    preflight: str = ""
    server: dict[str, Any] = field(default_factory=dict, hash=False, compare=False)

    def check(self) -> None:
        """Run the app's preflight check, if it has one.

        Raises
        ------
        TaperoomError
            The app must not start (e.g. exposed without credentials).
        """
        if self.preflight:
            module, _, function = self.preflight.partition(":")
            getattr(importlib.import_module(module), function)()

    @property
    def installed(self) -> bool:
        """True when the app's optional dependencies are importable."""
        return importlib.util.find_spec(self.requires) is not None


APPS: dict[str, AppSpec] = {
    # live wear pushes ~200-byte messages to many WebSockets: compressing each one for
    # each connection (permessage-deflate) cost more CPU than the send itself
    # (bench/livewear.py), and saves nothing worth it
    "ephemeral": AppSpec("ephemeral", "taperoom.ephemeral.app:app_from_env", 5000, "limits",
                         server={"ws_per_message_deflate": False}),
    "library": AppSpec("library", "taperoom.library.app:app_from_env", 12047, "sqlalchemy",
                       "taperoom.library.users:check_access"),
    "recorder": AppSpec("recorder", "taperoom.recorder.app:app_from_env", 8666, "apscheduler",
                        "taperoom.recorder.users:check_access"),
}
