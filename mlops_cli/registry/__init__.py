"""The MLflow model registry: connection, versions and aliases (``client.py``), `mlops models`
(``models.py``), scores of a version on listings (``scoring.py``)."""
