"""Prometheus scrape configuration shared by `mlops up` and the Kubernetes manifests."""

from __future__ import annotations

SCRAPE_INTERVAL = "5s"


def prometheus_config(targets: dict[str, str], interval: str = SCRAPE_INTERVAL) -> str:
    """A prometheus.yml scraping ``targets`` (job name → host:port, path /metrics)."""
    lines = [
        "# Written by mlops; regenerated on every `mlops up`.",
        "global:",
        f"  scrape_interval: {interval}",
        f"  evaluation_interval: {interval}",
        "scrape_configs:",
    ]
    for job, address in targets.items():
        lines += [
            f"  - job_name: {job}",
            "    metrics_path: /metrics",
            "    static_configs:",
            f"      - targets: ['{address}']",
        ]
    return "\n".join(lines) + "\n"
