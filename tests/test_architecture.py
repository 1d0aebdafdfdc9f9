"""The package's import graph, read from the source with ``ast`` (function-level imports included):
which room may import which. ``import_graph()`` is the helper every rule below is written with."""

from __future__ import annotations

import ast
from functools import lru_cache
from pathlib import Path

PACKAGE_ROOT = Path(__file__).resolve().parents[1] / "spikedistill"


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE_ROOT.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


@lru_cache(maxsize=None)
def import_graph() -> dict[str, frozenset[str]]:
    """``{module: the spikedistill modules it imports}`` over every .py file of the package, counting
    imports anywhere in a file (module level, in functions, under ``if``). ``from pkg import name``
    is an edge to ``pkg.name`` when that is a module, else to ``pkg``. That importing a module also
    runs its parent packages' ``__init__`` is not an edge (as import-linter counts)."""
    files = {module_name(p): p for p in PACKAGE_ROOT.rglob("*.py")}
    graph = {}
    for name, path in files.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        targets = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                targets.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = package.split(".")
                    anchor = anchor[: len(anchor) - (node.level - 1)]
                    base = ".".join(anchor + ([base] if base else []))
                for alias in node.names:
                    submodule = f"{base}.{alias.name}"
                    targets.add(submodule if submodule in files else base)
        graph[name] = frozenset(t for t in targets if t in files and t != name)
    return graph


def import_cycles(graph: dict[str, frozenset[str]]) -> list[frozenset[str]]:
    """The graph's import cycles: its strongly connected components of more than one module."""
    index: dict[str, int] = {}
    lowlink: dict[str, int] = {}
    stack: list[str] = []
    cycles = []

    def visit(node: str) -> None:  # Tarjan's algorithm
        index[node] = lowlink[node] = len(index)
        stack.append(node)
        for target in graph.get(node, ()):
            if target not in index:
                visit(target)
                lowlink[node] = min(lowlink[node], lowlink[target])
            elif target in stack:
                lowlink[node] = min(lowlink[node], index[target])
        if lowlink[node] == index[node]:
            component = set()
            while not component or node not in component:
                component.add(stack.pop())
            if len(component) > 1:
                cycles.append(frozenset(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return cycles


def within(prefix: str) -> dict[str, frozenset[str]]:
    """The import graph restricted to ``prefix`` and the modules under it."""
    inside = lambda name: name == prefix or name.startswith(prefix + ".")  # noqa: E731
    return {name: frozenset(filter(inside, targets)) for name, targets in import_graph().items() if inside(name)}


def importers_of(prefix: str) -> set[str]:
    """Modules outside ``prefix`` that import ``prefix`` or anything under it."""
    inside = lambda name: name == prefix or name.startswith(prefix + ".")  # noqa: E731
    return {source for source, targets in import_graph().items()
            if not inside(source) and any(inside(t) for t in targets)}



def test_the_import_graph_sees_function_level_imports():
    graph = import_graph()
    assert "spikedistill.neurons.dynamics" in graph["spikedistill.neurons.lif"]
    assert "spikedistill.data.events.dataset" in graph["spikedistill.checkpoint"]  # imported inside a method
    assert import_cycles({"a": frozenset("b"), "b": frozenset("c"), "c": frozenset("a"), "d": frozenset("a")}) \
        == [frozenset("abc")]
    assert import_cycles({"a": frozenset("b"), "b": frozenset()}) == []


def test_the_neuron_core_has_no_import_cycle():
    assert import_cycles(within("spikedistill.neurons")) == []


def test_the_package_has_no_import_cycle():
    assert import_cycles(import_graph()) == []


def test_rooms_import_one_way():
    """data/ knows nothing of evaluation or training; evaluation and export nothing of training."""
    graph = import_graph()
    room = lambda name: name.split(".")[1] if name.count(".") >= 1 else ""  # noqa: E731
    wrong = sorted(f"{source} → {target}" for source, targets in graph.items() for target in targets
                   if (room(source) == "data" and room(target) in ("evaluate", "train"))
                   or (room(source) in ("evaluate", "export") and room(target) == "train"))
    assert wrong == []


def test_only_the_dispatcher_imports_the_kernels():
    assert importers_of("spikedistill.neurons.kernels") == {"spikedistill.neurons.lif"}
