"""Operations tooling: the local stack and its service specs, Kubernetes, the Grafana dashboard,
buckets, the load test, the Airflow REST client and the inference API's client."""

from pathlib import Path

# Where the folders beside the package live (kustomize/, dags/, serving/, ui/): a checkout's root,
# or site-packages for the installed serving/ and ui/ packages.
PROJECT_ROOT = Path(__file__).resolve().parents[2]
