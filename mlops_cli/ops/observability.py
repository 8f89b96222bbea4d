"""Prometheus scrape configuration shared by `mlops up` and the Kubernetes manifests."""

from __future__ import annotations

SCRAPE_INTERVAL = "5s"


def prometheus_config(
    targets: dict[str, str],
    interval: str = SCRAPE_INTERVAL,
    pods: dict[str, tuple[str, str]] | None = None,
    logins: dict[str, tuple[str, str]] | None = None,
    containers: str | None = None,
) -> str:
    """A prometheus.yml scraping ``targets`` (job name -> host:port, path /metrics) and, on
    Kubernetes, ``pods`` (job name -> (namespace, app label)): every pod of that app found through
    the Kubernetes API, each on its port named ``http``, so that each replica is its own series
    (a Service address would hit a random pod at every scrape). ``logins``: job -> (user name,
    password file) for targets behind basic auth (MLflow's basic-auth app). ``containers``: a
    namespace whose containers' CPU, memory and start times are scraped from every node's kubelet
    (cAdvisor), through the API server's node proxy with Prometheus' service account."""
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
    if containers is not None:
        account = "/var/run/secrets/kubernetes.io/serviceaccount"
        lines += [
            "  - job_name: kubernetes-cadvisor",
            "    scheme: https",
            "    tls_config:",
            f"      ca_file: {account}/ca.crt",
            "    authorization:",
            f"      credentials_file: {account}/token",
            "    kubernetes_sd_configs:",
            "      - role: node",
            "    relabel_configs:",
            "      - target_label: __address__",
            "        replacement: kubernetes.default.svc:443",
            "      - source_labels: [__meta_kubernetes_node_name]",
            "        regex: (.+)",
            "        target_label: __metrics_path__",
            "        replacement: /api/v1/nodes/$1/proxy/metrics/cadvisor",
            "    metric_relabel_configs:",  # this namespace's containers, three series each: small
            "      - source_labels: [namespace]",
            f"        regex: {containers}",
            "        action: keep",
            "      - source_labels: [__name__]",
            "        regex: container_cpu_usage_seconds_total|container_memory_working_set_bytes"
            "|container_start_time_seconds",
            "        action: keep",
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
