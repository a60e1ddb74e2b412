"""/docs on a network without internet (operators' networks often are): Swagger UI was
loaded from a CDN, a blank page offline. In a real browser (Debian chromium)
with every non-loopback request aborted, the page renders every operation of
the OpenAPI document, loads nothing from another host, logs no error (a
Content-Security-Policy violation is one), and can try an operation out."""
from __future__ import annotations

import requests


def operations(url: str) -> int:
    document = requests.get(url + "/openapi.json", timeout=10).json()
    return sum(1 for item in document["paths"].values()
               for method in item if method in ("get", "post", "put", "patch", "delete"))


def test_docs_render_every_operation_offline(server, page, blocked_requests):
    # the blocking is real: a request elsewhere is aborted and recorded (from
    # a page without the /docs Content-Security-Policy, which would stop it first)
    page.goto(server.url + "/health")
    probe = page.evaluate("""() => fetch('https://cdn.jsdelivr.net/npm/swagger-ui-dist/')
                                   .then(() => 'loaded', () => 'blocked')""")
    assert probe == "blocked" and blocked_requests == ["https://cdn.jsdelivr.net/npm/swagger-ui-dist/"]
    blocked_requests.clear()
    page.console_errors.clear()

    page.goto(server.url + "/docs")
    page.wait_for_selector(".opblock", timeout=30_000)
    assert page.locator(".opblock").count() == operations(server.url)
    assert page.locator(".info .title").inner_text().startswith("TMF Recommendation Engine")
    assert "productCatalogManagement" in page.content()
    assert blocked_requests == []
    assert page.console_errors == []

    # try one operation out: Swagger UI calls the service itself
    block = page.locator(".opblock-get", has_text="/health/ready").first
    block.locator(".opblock-summary").click()
    block.locator("button.try-out__btn").click()
    block.locator("button.execute").click()
    page.wait_for_selector(".live-responses-table tbody .response-col_status", timeout=15_000)
    status = block.locator(".live-responses-table tbody .response-col_status").first.inner_text()
    assert status.strip() in ("200", "503"), status
    assert blocked_requests == []
