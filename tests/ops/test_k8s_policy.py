"""Policies over what Argo CD and the Airflow chart would apply: each rule is one way the cluster
deployment would not come up, or not stay up, that rendering and schema validation let through."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml

from mlops_cli.ops import k8s
from tests.conftest import REPO

pytest.importorskip("kubernetes_validate")
OVERLAYS = ["local", "prod"]
OUR_IMAGES = ("mlops-api", "mlops-ui", "mlops-airflow")
VALUES = yaml.safe_load((REPO / "kustomize/airflow/values.yaml").read_text())
WORKFLOW = yaml.safe_load((REPO / ".github/workflows/ci.yaml").read_text())
# Every key a value of the chart could set, with the value a real cluster needs (none generated).
CHART_SECRET_NAMES = ("fernetKeySecretName", "apiSecretKeySecretName", "jwtSecretName")


@pytest.fixture(scope="module", params=OVERLAYS)
def rendered(request: pytest.FixtureRequest) -> tuple[str, list[dict]]:
    return request.param, k8s.render(k8s.overlay_path(request.param))


def children(overlay: str, root: Path = REPO) -> list[dict]:
    return k8s.render(root / "argocd" / "apps" / overlay)


def app_objects(app: dict, root: Path = REPO) -> list[dict]:
    source = app["spec"].get("source")
    return k8s.render(root / source["path"]) if source and "path" in source else []


def templates(objects: list[dict]) -> list[tuple[str, dict]]:
    kinds = ("Deployment", "StatefulSet", "Job")
    return [(f"{o['kind']}/{o['metadata']['name']}", o["spec"]["template"]) for o in objects if o["kind"] in kinds]


def env_values(objects: list[dict]) -> dict[str, str]:
    """Every literal env value in the pod templates and in the Airflow chart's extra env."""
    found = {}
    for name, template in templates(objects):
        spec = template["spec"]
        for container in [*spec.get("containers", []), *spec.get("initContainers", [])]:
            for var in container.get("env", []):
                if "value" in var:
                    found[f"{name}/{container['name']}/{var['name']}"] = var["value"]
    for var in yaml.safe_load(VALUES["extraEnv"]):
        if "value" in var:
            found[f"airflow/{var['name']}"] = var["value"]
    return found


def created_secrets() -> dict[str, dict[str, str]]:
    """The Secrets `mlops up --target k8s` creates, from an empty environment (all generated)."""
    return {s["metadata"]["name"]: s["stringData"] for s in k8s.secret_objects(env={}, existing={})}


# --- Airflow under Argo CD -------------------------------------------------------------------


def test_airflow_jobs_are_argo_cd_sync_hooks_not_helm_hooks() -> None:
    # Argo CD does not run Helm hooks as hooks: with useHelmHooks the migrations never run.
    for job in ("migrateDatabaseJob", "createUserJob"):
        settings = VALUES.get(job, {})
        assert settings.get("useHelmHooks") is False, job
        assert settings.get("applyCustomEnv") is False, job
        assert settings.get("jobAnnotations", {}).get("argocd.argoproj.io/hook") == "Sync", job


def test_the_chart_generates_no_secret_at_random() -> None:
    secrets = created_secrets()
    for key in CHART_SECRET_NAMES:
        assert VALUES.get(key) in secrets, f"{key}: the chart would generate a new value on every render"
    assert VALUES["data"]["metadataSecretName"] in secrets
    assert secrets[VALUES["fernetKeySecretName"]].keys() == {"fernet-key"}
    assert secrets[VALUES["apiSecretKeySecretName"]].keys() == {"api-secret-key"}
    assert secrets[VALUES["jwtSecretName"]].keys() == {"jwt-secret"}
    from cryptography.fernet import Fernet

    Fernet(secrets[VALUES["fernetKeySecretName"]]["fernet-key"])  # a real Fernet key


def test_airflow_version_is_the_image_s_and_the_executor_scales_out() -> None:
    image = re.search(r"^FROM apache/airflow:(\d+\.\d+\.\d+)", (REPO / "dags/Dockerfile").read_text(), re.M)
    assert image and VALUES.get("airflowVersion") == image.group(1)
    assert VALUES["executor"] in ("KubernetesExecutor", "CeleryExecutor")
    for component in ("triggerer", "workers"):
        assert VALUES.get(component, {}).get("persistence", {}).get("enabled") is False, component


def test_no_default_airflow_admin() -> None:
    text = json.dumps(VALUES)
    assert '"admin"' not in text.replace('"username": "admin"', "")
    job = VALUES["createUserJob"]
    password = next(v for v in job["env"] if v["name"] == "AIRFLOW_ADMIN_PASSWORD")
    assert password["valueFrom"]["secretKeyRef"]["name"] in created_secrets()
    assert "$AIRFLOW_ADMIN_PASSWORD" in " ".join(job["args"])


def test_airflow_metadata_has_its_own_database() -> None:
    connection = created_secrets()[VALUES["data"]["metadataSecretName"]]["connection"]
    data_url = created_secrets()[k8s.SECRET_NAME]["MLOPS_DATA_DB_URL"]
    assert urlsplit(connection).path != urlsplit(data_url).path
    init = k8s.render(k8s.overlay_path("prod"))
    scripts = json.dumps([o for o in init if o["kind"] == "ConfigMap" and o["metadata"]["name"].startswith("postgres")])
    assert f"CREATE DATABASE {urlsplit(connection).path.lstrip('/')}" in scripts


# --- MLflow reachable -------------------------------------------------------------------------


def test_mlflow_allows_every_in_cluster_caller(rendered) -> None:
    from mlflow.server.security_utils import is_allowed_host_header

    _, objects = rendered
    mlflow = next(o for o in objects if o["kind"] == "Deployment" and o["metadata"]["name"] == "mlflow")
    env = {v["name"]: v.get("value") for v in mlflow["spec"]["template"]["spec"]["containers"][0]["env"]}
    allowed = [h.strip() for h in (env.get("MLFLOW_SERVER_ALLOWED_HOSTS") or "").split(",") if h.strip()]
    assert allowed and "*" not in allowed
    callers = {k: urlsplit(v).netloc for k, v in env_values(objects).items() if urlsplit(v).hostname == "mlflow"}
    prometheus = next(o for o in objects if o["kind"] == "ConfigMap" and o["metadata"]["name"].startswith("prometheus"))
    scrape = yaml.safe_load(prometheus["data"]["prometheus.yml"])
    for job in scrape["scrape_configs"]:
        for static in job.get("static_configs", []):
            callers.update({f"prometheus/{job['job_name']}": t for t in static["targets"] if t.startswith("mlflow")})
    assert {"airflow/MLOPS_MLFLOW_TRACKING_URI", "prometheus/mlflow"} <= set(callers)
    for deployment in ("api", "ui"):
        assert any(k.startswith(f"Deployment/{deployment}/") for k in callers), deployment
    for caller, host in callers.items():
        assert is_allowed_host_header(allowed, host), f"{caller} sends Host {host}: MLflow answers 403"
    assert not is_allowed_host_header(allowed, "attacker.example:5000")


# --- Images -----------------------------------------------------------------------------------


def our_images(objects: list[dict]) -> list[str]:
    images = []
    for _, template in templates(objects):
        spec = template["spec"]
        for container in [*spec.get("containers", []), *spec.get("initContainers", [])]:
            if any(container["image"].rpartition(":")[0].endswith(name) for name in OUR_IMAGES):
                images.append(container["image"])
    return images


def ci_bump_script(owner: str, sha: str) -> str:
    steps = WORKFLOW["jobs"]["bump-overlays"]["steps"]
    script = next(s["run"] for s in steps if s.get("name", "").startswith("Point"))
    return script.replace("${{ github.repository_owner }}", owner).replace("${{ github.sha }}", sha)


def test_prod_runs_exactly_the_images_ci_pushes(tmp_path: Path) -> None:
    pushed = WORKFLOW["jobs"]["images"]["steps"][-1]["with"]["tags"]
    assert pushed == "ghcr.io/${{ github.repository_owner }}/${{ matrix.image.name }}:${{ github.sha }}"
    built = {i["name"] for i in WORKFLOW["jobs"]["images"]["strategy"]["matrix"]["image"]}
    assert built == set(OUR_IMAGES)
    for folder in ("argocd", "kustomize", "dags", "serving", "ui"):
        shutil.copytree(REPO / folder, tmp_path / folder)
    subprocess.run(["bash", "-euo", "pipefail", "-c", ci_bump_script("acme", "0123abc")], cwd=tmp_path, check=True)
    expected = {f"ghcr.io/acme/{name}:0123abc" for name in OUR_IMAGES}
    prod_images = our_images(k8s.render(tmp_path / "kustomize/overlays/prod"))
    for app in children("prod", tmp_path):
        prod_images += our_images(app_objects(app, tmp_path))
    assert prod_images and set(prod_images) <= expected, set(prod_images) - expected
    values = yaml.safe_load((tmp_path / "kustomize/airflow/values.yaml").read_text())
    assert f"{values['images']['airflow']['repository']}:{values['images']['airflow']['tag']}" in expected
    # the local overlay keeps the images built on the developer's machine
    assert set(our_images(k8s.render(tmp_path / "kustomize/overlays/local"))) == set(
        our_images(k8s.render(k8s.overlay_path("local")))
    )


def test_prod_follows_the_release_branch_and_pulls_with_a_secret() -> None:
    for app in [yaml.safe_load((REPO / "argocd/root-prod.yaml").read_text()), *children("prod")]:
        for source in app["spec"].get("sources", [app["spec"].get("source")]):
            if "chart" not in source:
                assert source["targetRevision"] == k8s.PROD_REVISION, app["metadata"]["name"]
    prod = k8s.render(k8s.overlay_path("prod"))
    for name, template in templates(prod):
        if our_images([{"kind": "Deployment", "metadata": {"name": name}, "spec": {"template": template}}]):
            assert {"name": k8s.REGISTRY_SECRET} in template["spec"].get("imagePullSecrets", []), name
    assert VALUES["registry"]["secretName"] == k8s.REGISTRY_SECRET


def test_the_local_overlay_runs_images_built_here() -> None:
    local = k8s.render(k8s.overlay_path("local"))
    images = our_images(local)
    assert images and all(i.endswith(":local") and "/" not in i for i in images)
    for _, template in templates(local):
        for container in template["spec"]["containers"]:
            if container["image"] in images:
                assert container.get("imagePullPolicy") in ("IfNotPresent", "Never")


# --- No sync loops ----------------------------------------------------------------------------


def test_an_hpa_owns_its_replicas(rendered) -> None:
    """prod scales the API with an HPA, whose Deployment must not set replicas (Argo CD's selfHeal
    would undo every scale-up); local has no HPA and runs one API pod."""
    overlay, objects = rendered
    hpas = [o for o in objects if o["kind"] == "HorizontalPodAutoscaler"]
    assert {h["spec"]["scaleTargetRef"]["name"] for h in hpas} == {"local": set(), "prod": {"api"}}[overlay]
    for hpa in hpas:
        target = hpa["spec"]["scaleTargetRef"]
        deployment = next(o for o in objects if o["kind"] == target["kind"] and o["metadata"]["name"] == target["name"])
        assert "replicas" not in deployment["spec"], "selfHeal would undo every scale-up"
    if not hpas:
        api = next(o for o in objects if o["kind"] == "Deployment" and o["metadata"]["name"] == "api")
        assert api["spec"].get("replicas", 1) == 1


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_no_plain_job_under_auto_sync(overlay: str) -> None:
    for app in children(overlay):
        for job in (o for o in app_objects(app) if o["kind"] == "Job"):
            name = f"{app['metadata']['name']}: Job/{job['metadata']['name']}"
            assert "ttlSecondsAfterFinished" not in job["spec"], f"{name}: deleted, then recreated by selfHeal"
            hook = job["metadata"].get("annotations", {}).get("argocd.argoproj.io/hook")
            assert hook or "automated" not in app["spec"].get("syncPolicy", {}), f"{name}: immutable, re-run"


def test_health_of_child_applications_is_restored_for_waves() -> None:
    lupa = pytest.importorskip("lupa")
    patch = yaml.safe_load((REPO / "argocd/argocd-cm-health.yaml").read_text())
    assert patch["kind"] == "ConfigMap" and patch["metadata"] == {"name": "argocd-cm", "namespace": "argocd"} | {
        k: v for k, v in patch["metadata"].items() if k == "labels"
    }
    script = patch["data"]["resource.customizations.health.argoproj.io_Application"]
    runtime = lupa.LuaRuntime(unpack_returned_tuples=True)
    health = runtime.eval(f"function(obj) {script} end")

    def run(status: dict | None) -> str:
        obj = runtime.table_from({"status": status} if status is not None else {}, recursive=True)
        return health(obj)["status"]

    assert run(None) == "Progressing"
    assert run({"health": {"status": "Degraded", "message": "x"}}) == "Degraded"
    assert run({"health": {"status": "Healthy"}}) == "Healthy"


# --- Smaller points ---------------------------------------------------------------------------


def test_statefulsets_are_governed_by_headless_services(rendered) -> None:
    _, objects = rendered
    services = {o["metadata"]["name"]: o for o in objects if o["kind"] == "Service"}
    for sts in (o for o in objects if o["kind"] == "StatefulSet"):
        service = services.get(sts["spec"]["serviceName"])
        assert service and service["spec"].get("clusterIP") == "None", sts["metadata"]["name"]
        claims = {c["metadata"]["name"] for c in sts["spec"].get("volumeClaimTemplates", [])}
        for container in sts["spec"]["template"]["spec"]["containers"]:
            for mount in container.get("volumeMounts", []):
                if mount["name"] in claims:
                    assert mount.get("subPath"), f"{sts['metadata']['name']}: a database in the volume root"


def test_persistent_volumes_survive_deleting_the_app(rendered) -> None:
    _, objects = rendered
    claims = [o for o in objects if o["kind"] == "PersistentVolumeClaim"]
    assert claims
    for claim in claims:
        options = claim["metadata"].get("annotations", {}).get("argocd.argoproj.io/sync-options", "")
        assert {"Prune=false", "Delete=false"} <= set(options.split(",")), claim["metadata"]["name"]


def test_prometheus_scrapes_every_api_pod(rendered) -> None:
    _, objects = rendered
    config = next(o for o in objects if o["kind"] == "ConfigMap" and o["metadata"]["name"].startswith("prometheus"))
    jobs = {j["job_name"]: j for j in yaml.safe_load(config["data"]["prometheus.yml"])["scrape_configs"]}
    api = jobs["mlops-api"]
    assert "static_configs" not in api and api["kubernetes_sd_configs"][0]["role"] in ("pod", "endpoints")
    assert api["kubernetes_sd_configs"][0]["namespaces"]["names"] == [k8s.NAMESPACE]
    deployment = next(o for o in objects if o["kind"] == "Deployment" and o["metadata"]["name"] == "prometheus")
    account = deployment["spec"]["template"]["spec"].get("serviceAccountName")
    binding = next(o for o in objects if o["kind"] == "RoleBinding" and o["metadata"]["name"] == "prometheus")
    assert {"kind": "ServiceAccount", "name": account, "namespace": k8s.NAMESPACE} in binding["subjects"]
    role = next(o for o in objects if o["kind"] == "Role" and o["metadata"]["name"] == binding["roleRef"]["name"])
    rule = role["rules"][0]
    assert {"pods", "endpoints"} & set(rule["resources"]) and set(rule["verbs"]) == {"get", "list", "watch"}


def test_prometheus_reads_the_api_pods_resources_from_the_kubelets_with_read_only_rights(rendered) -> None:
    _, objects = rendered
    config = next(o for o in objects if o["kind"] == "ConfigMap" and o["metadata"]["name"].startswith("prometheus"))
    jobs = {j["job_name"]: j for j in yaml.safe_load(config["data"]["prometheus.yml"])["scrape_configs"]}
    cadvisor = jobs["kubernetes-cadvisor"]
    assert cadvisor["kubernetes_sd_configs"] == [{"role": "node"}] and cadvisor["scheme"] == "https"
    assert cadvisor["authorization"]["credentials_file"].startswith("/var/run/secrets/kubernetes.io/serviceaccount/")
    kept = [r for r in cadvisor["metric_relabel_configs"] if r["action"] == "keep"]
    assert {"source_labels": ["namespace"], "regex": k8s.NAMESPACE, "action": "keep"} in kept
    binding = next(o for o in objects if o["kind"] == "ClusterRoleBinding" and "prometheus" in o["metadata"]["name"])
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "prometheus", "namespace": k8s.NAMESPACE}]
    role = next(
        o for o in objects if o["kind"] == "ClusterRole" and o["metadata"]["name"] == binding["roleRef"]["name"]
    )
    assert role["rules"] == [
        {"apiGroups": [""], "resources": ["nodes", "nodes/proxy", "nodes/metrics"], "verbs": ["get", "list", "watch"]}
    ], "read-only, and nothing but the nodes' metrics"


def test_grafana_is_provisioned_per_the_design(rendered) -> None:
    _, objects = rendered
    maps = {o["metadata"]["name"].rsplit("-", 1)[0]: o for o in objects if o["kind"] == "ConfigMap"}
    provider = yaml.safe_load(next(iter(maps["grafana-dashboard-provider"]["data"].values())))["providers"][0]
    assert provider["orgId"] == 1 and provider["updateIntervalSeconds"] == 10 and provider["allowUiUpdates"] is True
    assert maps["grafana-dashboards"]["metadata"]["labels"]["grafana_dashboard"] == "1"


def test_the_ingress_has_a_class_and_tls() -> None:
    ingress = next(o for o in k8s.render(k8s.overlay_path("prod")) if o["kind"] == "Ingress")
    assert ingress["spec"].get("ingressClassName") and ingress["spec"].get("tls")


def test_no_password_is_spliced_into_a_uri(rendered) -> None:
    _, objects = rendered
    for name, value in env_values(objects).items():
        assert not re.search(r"://[^/@]*\$\(", value), f"{name}: an unescaped password inside a URI"
    secrets = k8s.secret_objects(env={"POSTGRES_PASSWORD": "p@ss/w:rd#1", "MYSQL_PASSWORD": "m y%sql?"}, existing={})
    uris = [v for s in secrets for v in s["stringData"].values() if "://" in v]
    assert uris and all(urlsplit(u).password not in ("p@ss/w:rd#1", "m y%sql?") for u in uris)
    from urllib.parse import unquote

    assert {unquote(urlsplit(u).password or "") for u in uris} >= {"p@ss/w:rd#1", "m y%sql?"}


def test_airflow_values_match_the_chart_s_keys_and_types() -> None:
    import jsonschema

    schema = json.loads((REPO / "mlops_cli/ops/schemas/airflow-chart-1.18.0-values-subset.json").read_text())
    validator = jsonschema.Draft202012Validator(schema)
    assert [e.message for e in validator.iter_errors(VALUES)] == []
    app = yaml.safe_load((REPO / "argocd/apps/prod/airflow.yaml").read_text())
    assert app["spec"]["sources"][0]["targetRevision"] == "1.18.0", "the schema subset was written for 1.18.0"
    typo = json.loads(json.dumps(VALUES))
    typo["createUserJob"]["useHelmHook"] = False
    typo["executor"] = "LocalExecuter"
    assert len(list(validator.iter_errors(typo))) == 2


# --- The registry wants a login (#13) ---------------------------------------------------------


def containers_env(objects: list[dict]) -> dict[str, dict[str, dict]]:
    """container -> its env by name, plus the Airflow chart's extra env as one 'container'."""
    found = {}
    for name, template in templates(objects):
        for container in template["spec"]["containers"]:
            found[f"{name}/{container['name']}"] = {v["name"]: v for v in container.get("env", [])}
    found["airflow"] = {v["name"]: v for v in yaml.safe_load(VALUES["extraEnv"])}
    return found


def test_mlflow_runs_its_basic_auth_app_and_every_client_logs_in(rendered) -> None:
    _, objects = rendered
    mlflow = next(o for o in objects if o["kind"] == "Deployment" and o["metadata"]["name"] == "mlflow")
    pod = mlflow["spec"]["template"]["spec"]
    server = pod["containers"][0]
    assert server["command"][server["command"].index("--app-name") + 1] == "basic-auth"
    env = {v["name"]: v for v in server["env"]}
    assert env["MLFLOW_AUTH_ADMIN_PASSWORD"]["valueFrom"]["secretKeyRef"]["key"] == "MLFLOW_TRACKING_PASSWORD"
    config = Path(env["MLFLOW_AUTH_CONFIG_PATH"]["value"])
    mount = next(m for m in server["volumeMounts"] if m["mountPath"] == str(config.parent))
    volume = next(v for v in pod["volumes"] if v["name"] == mount["name"])
    assert volume["secret"]["items"] == [{"key": "MLFLOW_AUTH_INI", "path": config.name}]
    assert pod["securityContext"].get("fsGroup"), "the server must be able to read its configuration"
    service = next(o for o in objects if o["kind"] == "Service" and o["metadata"]["name"] == "mlflow")
    assert service["spec"].get("type", "ClusterIP") == "ClusterIP", "MLflow stays cluster-internal"
    clients = {k: e for k, e in containers_env(objects).items() if "MLOPS_MLFLOW_TRACKING_URI" in e}
    assert {"airflow", "Deployment/api/api", "Deployment/ui/ui"} <= set(clients)
    for name, client in clients.items():
        assert client["MLFLOW_TRACKING_USERNAME"]["value"] == k8s.MLFLOW_ADMIN, name
        ref = client["MLFLOW_TRACKING_PASSWORD"]["valueFrom"]["secretKeyRef"]
        assert ref == {"name": k8s.SECRET_NAME, "key": "MLFLOW_TRACKING_PASSWORD"}, name
    prometheus = next(o for o in objects if o["kind"] == "ConfigMap" and o["metadata"]["name"].startswith("prometheus"))
    scrape = next(
        j for j in yaml.safe_load(prometheus["data"]["prometheus.yml"])["scrape_configs"] if j["job_name"] == "mlflow"
    )
    login = scrape["basic_auth"]
    assert login["username"] == k8s.MLFLOW_ADMIN
    deployment = next(o for o in objects if o["kind"] == "Deployment" and o["metadata"]["name"] == "prometheus")
    spec = deployment["spec"]["template"]["spec"]
    password = Path(login["password_file"])
    mount = next(m for m in spec["containers"][0]["volumeMounts"] if m["mountPath"] == str(password.parent))
    volume = next(v for v in spec["volumes"] if v["name"] == mount["name"])
    assert volume["secret"]["items"] == [{"key": "MLFLOW_TRACKING_PASSWORD", "path": password.name}]


def test_the_auth_configuration_reads_back_in_mlflow(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from urllib.parse import unquote

    from mlflow.server.auth.config import read_auth_config

    secrets = {s["metadata"]["name"]: s["stringData"] for s in k8s.secret_objects({"MYSQL_PASSWORD": "100%-p@ss"}, {})}
    (tmp_path / "basic_auth.ini").write_text(secrets[k8s.SECRET_NAME]["MLFLOW_AUTH_INI"])
    monkeypatch.setenv("MLFLOW_AUTH_CONFIG_PATH", str(tmp_path / "basic_auth.ini"))
    monkeypatch.delenv("MLFLOW_AUTH_ADMIN_USERNAME", raising=False)
    config = read_auth_config()
    assert config.admin_username == k8s.MLFLOW_ADMIN and config.default_permission == "NO_PERMISSIONS"
    assert unquote(urlsplit(config.database_uri).password) == "100%-p@ss"
    assert urlsplit(config.database_uri).path == "/mlflow_auth"
    init = json.dumps(
        [o for o in k8s.render(k8s.overlay_path("prod")) if o["metadata"]["name"].startswith("mysql-init")]
    )
    assert "CREATE DATABASE IF NOT EXISTS mlflow_auth" in init
