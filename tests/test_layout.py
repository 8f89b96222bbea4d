"""The layout is the architecture: imports point inward only, and no module imports itself back.

Layers, inside out: the core's base (``config``, ``errors``, ``schema``) ← ``registry`` ← ``pipeline``
← ``ops``; then the adapters: ``serving`` and ``dags`` use the core, ``ui`` uses the core and
``serving``'s model loading, and ``mlops_cli.cli`` (the `mlops` command) may start any of them.
Every import counts, including those inside functions.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.conftest import REPO

PACKAGES = ("mlops_cli", "serving", "ui", "dags")
# layer → the layers it may import (itself included)
ALLOWED = {
    "base": {"base"},
    "registry": {"base", "registry"},
    "pipeline": {"base", "registry", "pipeline"},
    "ops": {"base", "registry", "pipeline", "ops"},
    "serving": {"base", "registry", "pipeline", "ops", "serving"},
    "ui": {"base", "registry", "pipeline", "ops", "serving", "ui"},
    "dags": {"base", "registry", "pipeline", "ops", "dags"},
    "cli": {"base", "registry", "pipeline", "ops", "serving", "ui", "cli"},
}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def layer(module: str) -> str:
    parts = module.split(".")
    if parts[0] != "mlops_cli":
        return parts[0]
    if len(parts) == 1 or parts[1] in ("config", "errors", "schema", "__main__"):
        return "cli" if parts[-1] == "__main__" else "base"
    return parts[1]


def modules() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in (REPO / package).rglob("*.py"):
            found[module_name(path)] = path
    return found


def imports(path: Path, known: set[str]) -> set[str]:
    """The project modules ``path`` imports (``from pkg import module`` counts as the module)."""
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [f"{node.module}.{alias.name}" for alias in node.names] + [node.module]
        else:
            continue
        for name in names:
            if name.split(".")[0] in PACKAGES:
                while name not in known and "." in name:
                    name = name.rsplit(".", 1)[0]
                if name in known:
                    out.add(name)
    return out


MODULES = modules()
GRAPH = {name: imports(path, set(MODULES)) - {name} for name, path in MODULES.items()}


@pytest.mark.parametrize("module", sorted(MODULES))
def test_imports_point_inward_only(module: str) -> None:
    outward = sorted(target for target in GRAPH[module] if layer(target) not in ALLOWED[layer(module)])
    assert outward == [], f"{module} ({layer(module)}) imports outward: {outward}"


def test_no_import_cycle() -> None:
    """Package __init__ modules are left out: importing a submodule runs them, it does not make a cycle."""
    graph = {m: {t for t in targets if MODULES[t].name != "__init__.py"} for m, targets in GRAPH.items()}
    seen: set[str] = set()

    def visit(module: str, path: list[str]) -> None:
        if module in path:
            cycle = path[path.index(module) :] + [module]
            pytest.fail("import cycle: " + " → ".join(cycle))
        if module in seen:
            return
        for target in sorted(graph.get(module, ())):
            visit(target, [*path, module])
        seen.add(module)

    for module in sorted(graph):
        visit(module, [])


def test_every_command_group_has_a_module_of_the_same_name() -> None:
    """One hop from `mlops X` (``cli/X.py``) to the module doing its work."""
    commands = {p.stem for p in (REPO / "mlops_cli" / "cli").glob("*.py")} - {
        "__init__",
        "main",
        "application",
        "options",
    }
    workers = {Path(m.replace(".", "/")).name for m in MODULES if layer(m) != "cli"}
    assert sorted(commands - workers) == []
