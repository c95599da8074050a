"""The shape of ``src/keybuzz``: no import cycle, and an Amazon adapter that knows no database
or web framework. Imports are read from the source, functions' bodies included, so an import
moved into a function to dodge a cycle is still seen."""

from __future__ import annotations

import ast
import subprocess
import sys
from collections.abc import Collection, Iterator
from pathlib import Path

import keybuzz

PACKAGE_ROOT = Path(keybuzz.__file__).parent
PACKAGE = "keybuzz"


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE_ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict[str, Path]:
    return {
        _module_name(path): path
        for path in PACKAGE_ROOT.rglob("*.py")
        if "migrations" not in path.relative_to(PACKAGE_ROOT).parts
    }


def _imported_names(module: str, path: Path, modules: Collection[str] = ()) -> Iterator[str]:
    """Every module name ``module`` imports, anywhere in its source: ``from a import b`` is
    ``a.b`` when that is one of ``modules``, else ``a``."""
    is_package = path.name == "__init__.py"
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = module.split(".")
                anchor = anchor if is_package else anchor[:-1]
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            for alias in node.names:
                submodule = f"{base}.{alias.name}"
                yield submodule if submodule in modules else base


def import_graph() -> dict[str, set[str]]:
    """Module -> the modules of ``keybuzz`` it imports (a name that is no module is dropped)."""
    modules = _modules()
    return {
        module: {name for name in _imported_names(module, path, modules) if name in modules}
        - {module}
        for module, path in modules.items()
    }


def third_party_imports(module: str) -> set[str]:
    path = _modules()[module]
    return {name.split(".")[0] for name in _imported_names(module, path)} - {PACKAGE}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph[node]):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def reachable(graph: dict[str, set[str]], start: str) -> set[str]:
    seen, todo = set(), [start]
    while todo:
        node = todo.pop()
        for target in graph[node] - seen:
            seen.add(target)
            todo.append(target)
    return seen


def test_the_package_has_no_import_cycle() -> None:
    assert cycles(import_graph()) == []


def test_the_cycle_finder_finds_a_cycle_hidden_in_a_function() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}

    assert cycles(graph) == [["a", "b", "c"]]


def test_imports_inside_functions_are_part_of_the_graph() -> None:
    graph = import_graph()

    assert "keybuzz.app" in graph["keybuzz.cli"]  # imported inside `serve`


def test_the_job_queue_knows_no_domain() -> None:
    domains = {"tenants", "orders", "amazon", "marketplaces", "sync", "secrets", "ui", "simulator"}
    reached = reachable(import_graph(), "keybuzz.jobs")

    assert {name.split(".")[1] for name in reached} & domains == set()


FRAMEWORKS = {"sqlalchemy", "fastapi", "starlette", "psycopg", "procrastinate", "alembic"}


def test_the_amazon_adapter_knows_no_database_nor_web_framework() -> None:
    graph = import_graph()
    adapter = {module for module in graph if module.startswith("keybuzz.amazon")}
    reached = set().union(*(reachable(graph, module) for module in adapter))
    outside = {module for module in reached if not module.startswith("keybuzz.amazon")}
    libraries = set().union(*(third_party_imports(module) for module in adapter | outside))

    assert outside <= {"keybuzz.errors", "keybuzz.orders.records"}
    assert libraries & FRAMEWORKS == set()


def test_importing_the_amazon_adapter_loads_no_database_nor_web_framework() -> None:
    adapter = sorted(module for module in _modules() if module.startswith("keybuzz.amazon"))
    program = (
        "import importlib, sys\n"
        f"for name in {adapter!r}: importlib.import_module(name)\n"
        "print(' '.join(sorted({name.split('.')[0] for name in sys.modules})))"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", program], capture_output=True, text=True, check=True
    ).stdout.split()

    assert "keybuzz" in loaded
    assert set(loaded) & FRAMEWORKS == set()
