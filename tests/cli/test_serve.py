"""`mlops serve`: a taken port named, the docs page that works with no network."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from tests.conftest import run_mlops

pytestmark = pytest.mark.slow


def test_serve_on_a_taken_port_names_the_port(home: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run_mlops("serve", "--port", str(port))
    assert result.returncode == 1
    assert f"port {port} on 127.0.0.1 is already in use; the inference API wanted it" in result.stderr
    assert "MLOPS_API_PORT" in result.stderr


@pytest.mark.slow
def test_the_docs_render_air_gapped_in_a_real_chromium(api: str) -> None:
    """Every request leaving 127.0.0.1 is refused: Swagger UI must still render the API."""
    import os

    import httpx

    playwright = pytest.importorskip("playwright.sync_api")
    for page_path in ("/docs", "/redoc"):
        html = httpx.get(f"{api}{page_path}").text
        assert "cdn." not in html and "https://" not in html.replace("https://fastapi.tiangolo.com", "")
    if not os.path.exists("/usr/bin/chromium"):
        pytest.fail("Debian's chromium is required (apt-get install chromium)")
    outside: list[str] = []
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=["--headless", "--no-sandbox"])
        page = browser.new_page()

        def local_only(route) -> None:  # noqa: ANN001
            if route.request.url.startswith(api):
                route.continue_()
            else:
                outside.append(route.request.url)
                route.abort()

        page.route("**/*", local_only)
        page.goto(f"{api}/docs", timeout=60_000)
        page.get_by_text("/predict").first.wait_for(timeout=30_000)
        text = page.inner_text("body")
        browser.close()
    assert "/load_model" in text and "mlops inference API" in text
    assert not outside, f"the docs page asked the internet for {outside}"
