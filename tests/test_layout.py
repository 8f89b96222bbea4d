"""The layout is the architecture: imports point inward only, and no module imports itself back.

Layers, inside out: the core's base (``config``, ``errors``, ``schema``) ← ``store`` (the data
DB) and ``registry`` (MLflow) ← ``pipeline`` ← ``ops``; then the adapters: ``serving`` and
``dags`` use the core, ``ui`` uses the core and ``serving``'s model loading, and
``mlops_cli.cli`` (the `mlops` command) may start any of them.
Every import counts, including those inside functions.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.conftest import REPO

PACKAGES = ("mlops_cli", "serving", "ui", "dags")
# layer → the layers it may import (itself included)
CORE = {"base", "store", "registry"}
ALLOWED = {
    "base": {"base"},
    "store": {"base", "store"},
    "registry": {"base", "registry"},
    "pipeline": {*CORE, "pipeline"},
    "ops": {*CORE, "pipeline", "ops"},
    "serving": {*CORE, "pipeline", "ops", "serving"},
    "ui": {*CORE, "pipeline", "ops", "serving", "ui"},
    "dags": {*CORE, "pipeline", "ops", "dags"},
    "cli": {*CORE, "pipeline", "ops", "serving", "ui", "cli"},
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
    if len(parts) == 1 or parts[1] in ("config", "errors", "faults", "schema", "rule", "__main__"):
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


CLI_SHARED = ("__init__", "main", "application", "options")  # the app, not commands


def test_every_command_imports_its_work_module_of_the_same_name() -> None:
    """One hop from `mlops X` (``cli/X.py``) to the module doing its work: ``cli/X.py`` imports a
    module named X outside the CLI (a file or package of that name merely existing is not enough)."""
    commands = [m for m in MODULES if m.startswith("mlops_cli.cli.") and m.rsplit(".", 1)[1] not in CLI_SHARED]
    assert len(commands) >= 14
    missing = [
        m
        for m in commands
        if not any(layer(t) != "cli" and t.rsplit(".", 1)[-1] == m.rsplit(".", 1)[1] for t in GRAPH[m])
    ]
    assert missing == []


def test_no_command_imports_another_command() -> None:
    """Commands share only the app's own modules (rendering helpers live on ``Application``)."""
    shared = {f"mlops_cli.cli.{name}" for name in CLI_SHARED} | {"mlops_cli.cli"}
    crossing = {
        m: sorted(t for t in GRAPH[m] if t.startswith("mlops_cli.cli") and t not in shared)
        for m in MODULES
        if m.startswith("mlops_cli.cli.") and m not in shared
    }
    assert {m: t for m, t in crossing.items() if t} == {}


def _runtime_imports(path: Path) -> set[str]:
    """Top-level names of what ``path`` imports outside ``if TYPE_CHECKING:`` blocks."""
    tree = ast.parse(path.read_text())
    typing_only: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            typing_only |= {id(inner) for inner in ast.walk(node)}
    found = set()
    for node in ast.walk(tree):
        if id(node) in typing_only:
            continue
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


# MLflow's own tables are the registry's to read (registry/light.py answers without importing MLflow)
SQL_OWNERS = ("mlops_cli.store", "mlops_cli.registry")


@pytest.mark.parametrize("module", sorted(m for m in MODULES if not m.startswith(SQL_OWNERS)))
def test_sql_lives_in_the_store(module: str) -> None:
    """No statement runs on a database outside the store package: no SQLAlchemy import (type
    hints aside) and no table of the data DB anywhere else (the store's clock aside)."""
    tree = ast.parse(MODULES[module].read_text())
    imported = _runtime_imports(MODULES[module])
    assert not {name for name in imported if name.split(".")[0] == "sqlalchemy"}, f"{module} imports SQLAlchemy"
    tables = {
        alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and node.module == "mlops_cli.store.tables"
        for alias in node.names
    }
    assert tables <= {"now"}, f"{module} reaches the data DB's tables ({sorted(tables)}): give the store a function"


def _all_imports(path: Path) -> set[str]:
    """Every module name ``path`` imports, type-checking blocks and function bodies included."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


@pytest.mark.parametrize("module", sorted(m for m in MODULES if not m.startswith("mlops_cli.registry")))
def test_mlflow_lives_in_the_registry(module: str) -> None:
    """Only the registry package imports MLflow, even for a type hint (it names the client type
    the others use: ``registry.client.TrackingClient``); everyone else asks the registry."""
    used = sorted(name for name in _all_imports(MODULES[module]) if name.split(".")[0] == "mlflow")
    assert used == [], f"{module} imports {used}: give the registry package a function"


MAX_LINES = 400  # issue 23's "a screenful of screens": what a reader takes in at once


def test_no_module_grows_past_a_screenful_of_screens() -> None:
    sizes = {path.relative_to(REPO).as_posix(): len(path.read_text().splitlines()) for path in MODULES.values()}
    assert {name: n for name, n in sizes.items() if n > MAX_LINES} == {}


def test_a_modules_tests_are_at_its_path_under_tests() -> None:
    assert mirror_of("mlops_cli.pipeline.sources.http") == REPO / "tests/pipeline/sources/test_http.py"
    assert mirror_of("mlops_cli.errors") == REPO / "tests/test_errors.py"
    assert mirror_of("serving.app") == REPO / "tests/serving/test_app.py"


def mirror_of(module: str) -> Path:
    """Where a module's tests are: its path under tests/ (``mlops_cli/`` left out), ``test_`` prefixed."""
    parts = module.split(".")
    if parts[0] == "mlops_cli":
        parts = parts[1:]
    return REPO.joinpath("tests", *parts[:-1], f"test_{parts[-1]}.py")


def test_every_module_has_its_test_module_at_the_same_path() -> None:
    """Someone changing ``registry/signing.py`` finds its tests in ``tests/registry/test_signing.py``
    (end-to-end and policy suites may live beside them; package ``__init__`` modules re-export)."""
    sources = [m for m, path in MODULES.items() if path.name not in ("__init__.py", "__main__.py")]
    assert len(sources) > 80
    missing = sorted(m for m in sources if not mirror_of(m).exists())
    assert missing == [], "give each its tests/<path>/test_<module>.py"
