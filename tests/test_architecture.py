"""The package's shape: one-way imports, no cycles, and a light ``import flujo_trio``."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import flujo_trio

PACKAGE = Path(flujo_trio.__file__).parent

#: Modules that hold data and rules, not execution: they never import the runtime.
LEAVES = (
    "flujo_trio.state",
    "flujo_trio.dsl",
    "flujo_trio.serialization",
    "flujo_trio.context",
    "flujo_trio.results",
    "flujo_trio.usage",
    "flujo_trio.errors",
    "flujo_trio.events",
    "flujo_trio.governance",
    "flujo_trio.copying",
    "flujo_trio.agent_api",
    "flujo_trio.backoff",
    "flujo_trio.checks",
    "flujo_trio.callables",
    "flujo_trio.cache",
)


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _type_checking_only(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def imports_of(path: Path) -> set[str]:
    """Every flujo_trio module ``path`` imports, at any level (function bodies too),
    except imports made only for type checkers."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _type_checking_only(node):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                target = ".".join([*base, node.module] if node.module else base)
            else:
                target = node.module or ""
            if target.startswith("flujo_trio"):
                found.add(target)
                for alias in node.names:  # ``from . import x`` may name a submodule
                    candidate = f"{target}.{alias.name}"
                    if (PACKAGE.parent / candidate.replace(".", "/")).with_suffix(".py").exists():
                        found.add(candidate)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("flujo_trio"))
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(ast.parse(path.read_text()))
    found.discard(name)
    return found


def graph() -> dict[str, set[str]]:
    modules = {module_name(p): p for p in PACKAGE.rglob("*.py")}
    edges: dict[str, set[str]] = {}
    for name, path in modules.items():
        targets = set()
        for target in imports_of(path):
            # ``import a.b.c`` also imports the packages a and a.b; count the module itself
            while target not in modules and "." in target:
                target = target.rpartition(".")[0]
            if target in modules and target != name:
                targets.add(target)
        edges[name] = targets
    return edges


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = [0]

    def strong(node: str) -> None:
        index[node] = low[node] = counter[0]
        counter[0] += 1
        stack.append(node)
        on_stack.add(node)
        for target in sorted(edges[node]):
            if target not in index:
                strong(target)
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

    for node in sorted(edges):
        if node not in index:
            strong(node)
    return found


def is_package_init(name: str) -> bool:
    return (PACKAGE.parent / name.replace(".", "/") / "__init__.py").exists()


def test_the_package_has_no_import_cycle():
    edges = graph()
    # A package's __init__ re-exporting its own modules is not a cycle of concepts.
    for name in list(edges):
        if is_package_init(name):
            edges[name] = {t for t in edges[name] if not t.startswith(name + ".")}
    assert cycles(edges) == []


def test_state_and_the_other_leaves_never_import_the_runtime():
    offenders = {
        name: sorted(t for t in targets if t.startswith(("flujo_trio.runtime", "flujo_trio.cli")))
        for name, targets in graph().items()
        if name.startswith(LEAVES)
    }
    assert {name: found for name, found in offenders.items() if found} == {}


def test_the_checker_sees_a_cycle_and_a_leaf_import(tmp_path):
    # The checks above could pass by seeing nothing: show they see what they look for.
    edges = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}
    assert cycles(edges) == [["a", "b", "c"]]
    assert "flujo_trio.runtime.governor" in imports_of(PACKAGE / "runtime" / "journal.py") or any(
        t.startswith("flujo_trio.runtime") for t in imports_of(PACKAGE / "runtime" / "run.py")
    )


def test_import_flujo_trio_loads_no_database_converter_or_cli():
    code = (
        "import sys, flujo_trio\n"
        "heavy = ['sqlite3', 'psycopg', 'cattrs', 'flujo_trio.serialization', "
        "'flujo_trio.cli', 'click', 'rich', 'ray', 'openai', 'pydantic']\n"
        "print(','.join(m for m in heavy if m in sys.modules))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == ""
