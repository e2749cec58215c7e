"""Imports in plugins/tidb_pitr run one way, read from the source with `ast` (nothing is imported).

Layers, lowest first: pure (`tso`, `units`; the CR vocabulary `cr`; `planning`; `config`) <- `hooks` (and
`runtime`, what a running task uses from Airflow) <- `triggers` <- task bodies (`flows/tasks`), `operators`,
`sensors` <- `flows` (DAG shape) <- `factory` <- `plugin`, `ui`. A module may import its own layer or a lower
one, at module level or inside a function, never a higher one, and no two modules may import each other
round a circle. Imports under `if TYPE_CHECKING:` are annotations only and do not count.

The parse-time boundary: what the DAG file imports at module level (the closure of `tidb_pitr.factory`'s
module-level imports) reaches no hook and no task body; those are imported inside task callables and
`execute` methods, so that parsing a DAG file loads no Kubernetes, storage or SQL client.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[3] / "plugins" / "tidb_pitr"

# (rank, module prefixes); the longest matching prefix decides a module's layer.
LAYERS: list[tuple[int, tuple[str, ...]]] = [
    (0, ("tidb_pitr", "tidb_pitr.tso", "tidb_pitr.units", "tidb_pitr.timetables")),
    (1, ("tidb_pitr.cr",)),
    (2, ("tidb_pitr.planning",)),
    (3, ("tidb_pitr.config",)),
    (4, ("tidb_pitr.hooks", "tidb_pitr.runtime")),
    (5, ("tidb_pitr.triggers",)),
    (6, ("tidb_pitr.flows.tasks", "tidb_pitr.operators", "tidb_pitr.sensors")),
    (7, ("tidb_pitr.flows",)),
    (8, ("tidb_pitr.factory",)),
    (9, ("tidb_pitr.plugin", "tidb_pitr.ui", "tidb_pitr.__main__")),  # entry points: the plugin, the CLI
]
# Loaded inside task callables and execute methods only, never while a DAG file is parsed.
RUN_TIME_ONLY = ("tidb_pitr.hooks", "tidb_pitr.flows.tasks")


def _under(module: str, prefix: str) -> bool:
    return module == prefix or module.startswith(prefix + ".")


def layer(module: str) -> int:
    best = max((p for _, ps in LAYERS for p in ps if _under(module, p)), key=len)
    return next(rank for rank, ps in LAYERS if best in ps)


def modules(root: Path = PACKAGE) -> dict[str, Path]:
    out = {}
    for path in sorted(root.rglob("*.py")):
        parts = path.relative_to(root.parent).with_suffix("").parts
        out[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return out


def _type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _walk(body: list[ast.stmt], local: bool) -> Iterator[tuple[ast.Import | ast.ImportFrom, bool]]:
    """Import statements with whether they run later than the module's import (inside a def or lambda)."""
    for node in body:
        if isinstance(node, ast.If) and _type_checking(node):
            yield from _walk(node.orelse, local)
            continue
        if isinstance(node, ast.Import | ast.ImportFrom):
            yield node, local
            continue
        inner = local or isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda)
        for field in ("body", "orelse", "finalbody", "handlers"):
            children = getattr(node, field, None)
            if isinstance(children, list):
                yield from _walk([c for c in children if isinstance(c, ast.stmt | ast.excepthandler)], inner)


def imports(module: str, path: Path, known: set[str]) -> Iterator[tuple[str, bool, int]]:
    """(imported tidb_pitr module, local?, line) for every import in `module`'s source."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node, local in _walk(ast.parse(path.read_text(encoding="utf-8")).body, False):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        else:
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join([*base, node.module] if node.module else base)
            else:
                target = node.module or ""
            # `from .flows import guard` imports the submodule tidb_pitr.flows.guard.
            subs = [f"{target}.{alias.name}" for alias in node.names if f"{target}.{alias.name}" in known]
            targets = subs or [target]
        for target in targets:
            if _under(target, "tidb_pitr"):
                yield target, local, node.lineno


def graph(root: Path = PACKAGE) -> dict[str, list[tuple[str, bool, int]]]:
    found = modules(root)
    return {module: list(imports(module, path, set(found))) for module, path in found.items()}


def upward(edges: dict[str, list[tuple[str, bool, int]]]) -> list[str]:
    return [f"{module}:{line} imports {target}{' (in a function)' if local else ''}: layer {layer(module)} "
            f"-> {layer(target)}"
            for module, targets in edges.items() for target, local, line in targets if layer(target) > layer(module)]


def cycles(edges: dict[str, list[tuple[str, bool, int]]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    out: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for target, _, _ in edges.get(node, []):
            if target not in edges or target == node:
                continue
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    for node in edges:
        if node not in index:
            visit(node)
    return out


def parse_time_closure(edges: dict[str, list[tuple[str, bool, int]]], start: str) -> set[str]:
    seen, todo = set(), [start]
    while todo:
        module = todo.pop()
        if module in seen:
            continue
        seen.add(module)
        todo.extend(target for target, local, _ in edges.get(module, []) if not local)
    return seen


def test_every_module_has_a_layer_and_the_graph_is_not_empty() -> None:
    edges = graph()
    assert len(edges) > 50 and sum(map(len, edges.values())) > 200
    assert {"tidb_pitr.cr.model", "tidb_pitr.config", "tidb_pitr.flows.tasks.restore"} <= set(edges)
    assert all(layer(module) >= 0 for module in edges)


def test_no_import_runs_up_a_layer() -> None:
    assert upward(graph()) == []


def test_no_import_cycle() -> None:
    assert cycles(graph()) == []


def test_parsing_the_dags_imports_no_hook_and_no_task_body() -> None:
    reached = parse_time_closure(graph(), "tidb_pitr.factory")
    assert "tidb_pitr.flows.restore" in reached  # the closure is followed at all
    assert sorted(m for m in reached if any(_under(m, p) for p in RUN_TIME_ONLY)) == []


def test_the_checks_catch_what_they_are_for(tmp_path: Path) -> None:
    """An upward import and a circle in a made-up package are found, with the module and line."""
    root = tmp_path / "tidb_pitr"
    (root / "cr").mkdir(parents=True)
    (root / "flows").mkdir()
    for init in (root, root / "cr", root / "flows"):
        (init / "__init__.py").write_text("")
    (root / "cr" / "model.py").write_text("def f():\n    from ..flows.guard import x\n")
    (root / "flows" / "guard.py").write_text("from ..cr.model import f\nx = 1\n")
    (root / "tso.py").write_text("from .units import y\nz = 1\n")
    (root / "units.py").write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from .cr import model\n"
                                   "from .tso import z\ny = 2\n")
    edges = graph(root)
    assert upward(edges) == ["tidb_pitr.cr.model:2 imports tidb_pitr.flows.guard (in a function): layer 1 -> 7"]
    assert sorted(cycles(edges)) == [["tidb_pitr.cr.model", "tidb_pitr.flows.guard"],
                                     ["tidb_pitr.tso", "tidb_pitr.units"]]
