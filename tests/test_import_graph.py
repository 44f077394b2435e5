"""No import cycle anywhere in ``src/taperoom`` (imports inside functions and under
``if TYPE_CHECKING:`` count)."""

from __future__ import annotations

from tests.imports import cycles, import_graph


def test_cycle_finder_sees_a_cycle() -> None:
    """The finder itself: a -> b -> c -> a is one cycle; a -> b -> c is none."""
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": {"c"}, "c": set()}) == []


def test_the_graph_sees_lazy_and_relative_imports() -> None:
    """Imports inside functions and relative imports are edges of the graph."""
    graph = import_graph()
    assert "taperoom.cli" in graph
    assert "taperoom.library.context" in graph["taperoom.library.app"]
    assert len(graph) > 100


def test_no_import_cycle_in_taperoom() -> None:
    """No two modules of the three apps and their core import each other, directly or
    around a loop."""
    assert cycles(import_graph()) == []
