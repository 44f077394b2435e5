"""The import graph of ``src/taperoom``, read with :mod:`ast`, for the layout tests."""

from __future__ import annotations

import ast
from pathlib import Path

import taperoom

SRC = Path(taperoom.__file__).resolve().parent


def modules(package: str = "taperoom") -> dict[str, Path]:
    """Dotted name -> file of every module of `package` (a package is its ``__init__``)."""
    base = SRC.joinpath(*package.split(".")[1:])
    out = {}
    for path in sorted(base.rglob("*.py")):
        parts = list(path.relative_to(SRC.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = path
    return out


def _type_checking_only(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _imported(name: str, path: Path, type_checking: bool) -> set[str]:
    """Dotted names that `path` imports anywhere (inside functions too); those under
    ``if TYPE_CHECKING:`` only when `type_checking`."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        if not type_checking and isinstance(node, ast.If) and _type_checking_only(node):
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
    return found


def import_graph(package: str = "taperoom", *, type_checking: bool = True
                 ) -> dict[str, set[str]]:
    """Edges module -> the modules of `package` it imports.

    An import of a name inside a module (``from a.b import c``) is an edge to the
    module ``a.b`` (or to ``a.b.c`` when that is a module).

    Parameters
    ----------
    package : str
        Dotted package whose modules are the nodes (and the only targets).
    type_checking : bool
        Count imports under ``if TYPE_CHECKING:`` too.
    """
    known = modules(package)

    def resolve(target: str) -> str | None:
        while target and target not in known:
            target = target.rpartition(".")[0]
        return target or None

    graph: dict[str, set[str]] = {}
    for name, path in known.items():
        targets = {resolve(t) for t in _imported(name, path, type_checking)}
        graph[name] = {t for t in targets if t is not None and t != name}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, 1972), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
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
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found
