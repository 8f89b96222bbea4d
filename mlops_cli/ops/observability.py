"""Prometheus scrape configuration shared by `mlops up` and the Kubernetes manifests."""

from __future__ import annotations

SCRAPE_INTERVAL = "5s"


def prometheus_config(
    targets: dict[str, str],
    interval: str = SCRAPE_INTERVAL,
    pods: dict[str, tuple[str, str]] | None = None,
    logins: dict[str, tuple[str, str]] | None = None,
) -> str:
    """A prometheus.yml scraping ``targets`` (job name -> host:port, path /metrics) and, on
    Kubernetes, ``pods`` (job name -> (namespace, app label)): every pod of that app found through
    the Kubernetes API, each on its port named ``http``, so that each replica is its own series
    (a Service address would hit a random pod at every scrape). ``logins``: job -> (user name,
    password file) for targets behind basic auth (MLflow's basic-auth app)."""
    lines = [
        "# Written by mlops; regenerated on every `mlops up`.",
        "global:",
        f"  scrape_interval: {interval}",
        f"  evaluation_interval: {interval}",
        "scrape_configs:",
    ]
    for job, (namespace, app) in (pods or {}).items():
        lines += [
            f"  - job_name: {job}",
            "    metrics_path: /metrics",
            "    kubernetes_sd_configs:",
            "      - role: pod",
            "        namespaces:",
            f"          names: [{namespace}]",
            "    relabel_configs:",
            "      - source_labels: [__meta_kubernetes_pod_label_app_kubernetes_io_name]",
            f"        regex: {app}",
            "        action: keep",
            "      - source_labels: [__meta_kubernetes_pod_container_port_name]",
            "        regex: http",
            "        action: keep",
            "      - source_labels: [__meta_kubernetes_pod_name]",
            "        target_label: pod",
        ]
    for job, address in targets.items():
        lines += [
            f"  - job_name: {job}",
            "    metrics_path: /metrics",
            "    static_configs:",
            f"      - targets: ['{address}']",
        ]
        if job in (logins or {}):
            user, password_file = logins[job]
            lines += ["    basic_auth:", f"      username: {user}", f"      password_file: {password_file}"]
    return "\n".join(lines) + "\n"
