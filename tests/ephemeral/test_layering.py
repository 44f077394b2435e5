"""The ephemeral app's modules import one way: api -> context -> service -> store."""

from __future__ import annotations

from tests.imports import cycles, import_graph


def _graph() -> dict[str, set[str]]:
    return import_graph(type_checking=False)


def test_no_import_cycle_through_the_ephemeral_app() -> None:
    """No ephemeral module is part of an import cycle (imports inside functions count)."""
    found = [c for c in cycles(_graph()) if any(m.startswith("taperoom.ephemeral") for m in c)]
    assert not found, found


def test_services_never_import_the_composition_root_or_the_routers() -> None:
    """Only the app, the routers and the command line know the composition root; the
    services, the store, the hot path and the DSP import neither it nor the routers."""
    top = {"taperoom.ephemeral.app", "taperoom.ephemeral.context", "taperoom.ephemeral.api"}
    graph = _graph()
    wrong = {name: sorted(m for m in deps if m in top or m.startswith("taperoom.ephemeral.api."))
             for name, deps in graph.items()
             if name.startswith("taperoom.ephemeral.") and name not in top
             and not name.startswith("taperoom.ephemeral.api.")}
    assert not {k: v for k, v in wrong.items() if v}
    assert graph["taperoom.ephemeral.context"] >= {"taperoom.ephemeral.service",
                                                   "taperoom.ephemeral.store"}
