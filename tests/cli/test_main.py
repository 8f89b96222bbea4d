import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import run_mlops

HEAVY = ("pandas", "sklearn", "mlflow", "numpy", "sqlalchemy", "fastapi", "airflow", "kubernetes")


@pytest.mark.parametrize("args", [["--help"], ["train", "--help"], ["models", "--help"], ["data", "serve", "--help"]])
def test_help_imports_no_heavy_library(args: list[str]) -> None:
    code = (
        "import sys\n"
        f"sys.argv = ['mlops', *{args!r}]\n"
        "from mlops_cli.cli.main import main\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        f"print('LOADED', sorted(m for m in {HEAVY!r} if m in sys.modules))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert "Usage" in result.stdout
    assert result.stdout.strip().splitlines()[-1] == "LOADED []"


def test_help_lists_every_command_and_env_vars() -> None:
    """Every command and group the app registers is a row of `mlops --help`'s Commands box, with
    its one-line help; and a command's help names the MLOPS_* variable behind an option."""
    import re

    from mlops_cli.cli.main import app

    registered = {c.name for c in app.registered_commands} | {g.name for g in app.registered_groups}
    assert len(registered) >= 17
    text = run_mlops("--help", env={"COLUMNS": "120"}).stdout
    box = text[text.index("Commands") :]
    rows = {m.group(1) for m in re.finditer(r"^│ ([a-z]+) {2,}\S", box, re.MULTILINE)}
    assert rows == registered, f"missing: {registered - rows}, unknown: {rows - registered}"
    assert "MLOPS_DATA_SOURCE" in run_mlops("train", "--help").stdout


def test_bad_setting_is_one_line_exit_1_without_traceback(home: Path) -> None:
    result = run_mlops("config", "show", env={"MLOPS_RETRAIN_MIN_NEW_SHARE": "7"})
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: invalid settings: retrain_min_new_share")
    assert "Traceback" not in result.stderr
    verbose = run_mlops("-v", "config", "show", env={"MLOPS_RETRAIN_MIN_NEW_SHARE": "7"})
    assert verbose.returncode == 1 and "Traceback" in verbose.stderr


def test_inspection_with_no_models_yet(home: Path) -> None:
    result = run_mlops("models", "list", "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == []
    missing = run_mlops("models", "show", "champion")
    assert missing.returncode == 1 and "no alias 'champion'" in missing.stderr


def every_command(group=None, prefix=()):  # noqa: ANN001, ANN201 — walks click's command tree
    import typer.main

    from mlops_cli.cli.main import app

    group = group or typer.main.get_command(app)
    for name, command in group.commands.items():
        yield (*prefix, name)
        if hasattr(command, "commands"):
            yield from every_command(command, (*prefix, name))


def test_help_fits_80_columns_and_shows_types_as_words() -> None:
    """tmux's default width; types as TEXT/INTEGER/PATH, a flag without one (not <bool>)."""
    for command in every_command():
        result = subprocess.run(
            [sys.executable, "-m", "mlops_cli", *command, "--help"],
            capture_output=True,
            text=True,
            env={**__import__("os").environ, "COLUMNS": "80", "TERM": "dumb"},
        )
        assert result.returncode == 0, (command, result.stderr)
        assert all(len(line) <= 80 for line in result.stdout.splitlines()), command
        for raw in ("<bool>", "<str>", "<list[", "range>", "<int>", "<path>"):
            assert raw not in result.stdout, (command, raw)


def test_a_missing_optional_library_names_the_extra_to_install(home: Path, tmp_path: Path) -> None:
    """kubernetes-validate absent (as without the k8s extra): one line naming the extra, for a clone
    too — not a ModuleNotFoundError traceback."""
    blocker = tmp_path / "sitecustomize.py"
    blocker.write_text(
        "import sys\n"
        "class Block:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] == 'kubernetes_validate':\n"
        "            raise ModuleNotFoundError(f\"No module named '{name}'\", name=name)\n"
        "sys.meta_path.insert(0, Block())\n"
    )
    env = {**__import__("os").environ, "PYTHONPATH": str(tmp_path)}
    result = subprocess.run(
        [sys.executable, "-m", "mlops_cli", "up", "--target", "k8s", "--dry-run"],
        capture_output=True,
        text=True,
        env=env,
    )
    assert result.returncode == 1
    said = (
        "error: this command needs kubernetes_validate, which is not installed — "
        "pip install -e '.[k8s]' in a clone of mlops, or pip install 'mlops[k8s]'"
    )
    assert result.stderr.strip().splitlines() == [said], "piped without COLUMNS: one line, for logs and grep"
    narrow = subprocess.run(
        [sys.executable, "-m", "mlops_cli", "up", "--target", "k8s", "--dry-run"],
        capture_output=True,
        text=True,
        env={**env, "COLUMNS": "80"},
    )
    lines = narrow.stderr.splitlines()
    assert narrow.returncode == 1 and max(map(len, lines)) <= 80 and len(lines) > 1, narrow.stderr
    assert " ".join(narrow.stderr.split()) == said and all(line.startswith("       ") for line in lines[1:])
