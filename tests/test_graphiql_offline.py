"""GraphiQL renders from the service's own files (no CDN): DOM check and a screenshot."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from graph.graphiql import have_assets
from tests.browser import dump_dom, screenshot
from tests.faults.server import ServerProcess


@pytest.fixture(scope="module")
def server(database_url: str) -> Iterator[ServerProcess]:
    if not have_assets():
        pytest.fail("GraphiQL assets missing: run `footfall assets`", pytrace=False)
    srv = ServerProcess({"DATABASE_URL": database_url, "ENVIRONMENT": "test"})
    srv.start()
    yield srv
    srv.kill()


def test_graphiql_page_uses_only_local_assets(server: ServerProcess) -> None:
    html = httpx.get(server.url + "/graphql", headers={"Accept": "text/html"}).text
    assert "/graphiql/vendor/graphiql.min.js" in html
    assert "cdn" not in html.lower() and "unpkg" not in html and "jsdelivr" not in html
    for asset in ("graphiql.min.js", "react.production.min.js", "graphiql.min.css"):
        assert httpx.get(f"{server.url}/graphiql/vendor/{asset}").status_code == 200


def test_graphiql_renders_in_headless_chromium(server: ServerProcess) -> None:
    dom = dump_dom(server.url + "/graphql")
    assert "graphiql-container" in dom, dom[:2000]
    assert "Loading GraphiQL" not in dom
    shot = screenshot(server.url + "/graphql", "graphiql.png")
    assert shot.exists() and shot.stat().st_size > 10_000
