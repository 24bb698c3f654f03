"""tracker.js in headless Chromium against a live server: page views (initial and SPA
navigation), a custom event, beacons — then the stored rows are checked."""

from __future__ import annotations

import asyncio
import functools
import http.server
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import orjson
import pytest

from tests.browser import dump_dom
from tests.faults.server import ServerProcess, free_port

PAGE = """<!doctype html><html><head><title>shop</title>
<script src="{api}/tracker.js" data-site-id="{site}" {extra}></script></head>
<body><div id="out">start</div><script>
setTimeout(function () {{
  history.pushState({{}}, "", "/spa/second?utm_source=newsletter");
  setTimeout(function () {{
    footfall.track("signup", {{plan: "pro"}});
    footfall.flush();
    document.getElementById("out").textContent = "done";
  }}, 300);
}}, 500);
</script></body></html>"""


@pytest.fixture(scope="module")
def api(database_url: str) -> Iterator[ServerProcess]:
    srv = ServerProcess({"DATABASE_URL": database_url, "ENVIRONMENT": "test"})
    srv.start()
    yield srv
    srv.kill()


def _host(pages: dict[str, str], tmp: Path) -> tuple[http.server.ThreadingHTTPServer, int]:
    for name, body in pages.items():
        (tmp / name).write_text(body)
    port = free_port()
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(tmp))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, port


async def _rows(dsn: str, site: str, want: int) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(dsn)
    try:
        deadline = time.monotonic() + 10
        while True:
            rows = await conn.fetch(
                "SELECT event_type, page, visitor_id, session_id, utm_source, properties, browser"
                " FROM events WHERE website_id = $1 ORDER BY ts, event_type", site)  # fmt: skip
            if len(rows) >= want or time.monotonic() > deadline:
                return rows
            await asyncio.sleep(0.2)
    finally:
        await conn.close()


@pytest.mark.parametrize("mode", ["storage", "cookieless"])
async def test_tracker_in_headless_chromium(
    api: ServerProcess, database_url: str, tmp_path: Path, mode: str
) -> None:
    site = f"trk-{uuid.uuid4().hex[:8]}"
    conn = await asyncpg.connect(database_url)
    await conn.execute("INSERT INTO websites (id, domain) VALUES ($1, 'localhost')", site)
    await conn.close()
    extra = "data-cookieless" if mode == "cookieless" else ""
    host, port = _host({"index.html": PAGE.format(api=api.url, site=site, extra=extra)}, tmp_path)
    try:
        dom = await asyncio.to_thread(dump_dom, f"http://127.0.0.1:{port}/index.html", 6000)
        assert ">done<" in dom, dom[-1500:]
        rows = await _rows(database_url, site, 3)
    finally:
        host.shutdown()
    kinds = [(r["event_type"], r["page"]) for r in rows]
    assert ("pageview", "/index.html") in kinds
    assert ("pageview", "/spa/second") in kinds
    assert ("signup", "/spa/second") in kinds
    assert len(rows) == 3
    assert len({r["visitor_id"] for r in rows}) == 1 and len({r["session_id"] for r in rows}) == 1
    spa = next(r for r in rows if r["page"] == "/spa/second" and r["event_type"] == "pageview")
    assert spa["utm_source"] == "newsletter"
    signup = next(r for r in rows if r["event_type"] == "signup")
    assert orjson.loads(signup["properties"]) == {"plan": "pro"}
    assert rows[0]["browser"]  # enriched from the real user agent
    if mode == "cookieless":
        assert rows[0]["visitor_id"].startswith("h")  # the server's daily-salted hash
