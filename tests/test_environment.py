"""The suite runs what users install: [dev] is the users' extras plus test tools, and Airflow,
whose pins would hold FastAPI back, lives in an environment of its own (conftest.airflow_bin)."""

from __future__ import annotations

import tomllib
from importlib.metadata import distributions, version

from tests.conftest import REPO


def test_dev_has_every_users_extra_but_airflow() -> None:
    extras = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    dev = next(r for r in extras["dev"] if r.startswith("mlops["))
    named = set(dev.removeprefix("mlops[").removesuffix("]").split(","))
    assert {"serving", "ui", "postgres", "mysql", "loadtest", "k8s"} <= named and "airflow" not in named


def test_this_environment_has_no_airflow_and_the_fastapi_a_ui_install_gets() -> None:
    names = (d.metadata["Name"] for d in distributions())
    installed = sorted(name for name in names if name.lower().startswith("apache-airflow"))
    assert not installed, (
        f"Airflow is installed beside the project ({', '.join(installed)}), holding FastAPI at its pin: "
        "pip uninstall them (its tests build their own environment)"
    )
    # Airflow 3 pins fastapi<0.137: a FastAPI past it is one no Airflow install brought
    major, minor = (int(p) for p in version("fastapi").split(".")[:2])
    assert (major, minor) >= (0, 137), f"FastAPI {version('fastapi')}: the version Airflow pins, not the users'"
