"""The ephemeral app's modules import one way: api -> context -> service -> store."""

from __future__ import annotations

import ast
from pathlib import Path

import taperoom

SRC = Path(taperoom.__file__).resolve().parent


def _module_name(path: Path) -> str:
    parts = ["taperoom", *path.relative_to(SRC).with_suffix("").parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _type_checking_only(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _imports(path: Path, modules: set[str]) -> set[str]:
    """The taperoom modules `path` imports anywhere (functions included), except under
    ``if TYPE_CHECKING:``."""
    name = _module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _type_checking_only(node):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, *([base] if base else [])])
            found.add(base)
            found.update(f"{base}.{a.name}" for a in node.names)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(ast.parse(path.read_text(encoding="utf-8")))
    return {m for m in found if m in modules and m != name}


def _graph() -> dict[str, set[str]]:
    paths = {_module_name(p): p for p in SRC.rglob("*.py")}
    modules = set(paths)
    return {name: _imports(path, modules) for name, path in paths.items()}


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, 1972)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []

    def strongconnect(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                strongconnect(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            strongconnect(v)
    return out


def test_no_import_cycle_through_the_ephemeral_app() -> None:
    """No ephemeral module is part of an import cycle (imports inside functions count)."""
    cycles = [c for c in _cycles(_graph()) if any(m.startswith("taperoom.ephemeral") for m in c)]
    assert not cycles, cycles


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
