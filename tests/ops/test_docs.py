"""API docs that work with no network: every file the pages load is served by the API itself."""

from __future__ import annotations

import re

from fastapi import FastAPI
from fastapi.testclient import TestClient

from mlops_cli.ops.docs import offline_docs


def test_docs_and_redoc_load_only_files_the_app_serves() -> None:
    app = FastAPI(title="t", docs_url=None, redoc_url=None)
    offline_docs(app)
    client = TestClient(app)
    for page in ("/docs", "/redoc"):
        html = client.get(page).text
        sources = re.findall(r'(?:src|href)="([^"]+)"', html)
        assert sources and all(s.startswith("/docs-static/") for s in sources), (page, sources)
        assert "fonts.googleapis" not in html
        for source in sources:
            assert client.get(source).status_code == 200, source
    assert "/docs" not in client.get("/openapi.json").json()["paths"]
