"""``footfall export`` → ``footfall import`` reproduces identical stats; imports are
idempotent; a Seentics ``events`` table dump (CSV) imports; ``footfall demo`` works."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx

from tests.conftest import JWT_SECRET, gql, make_website

ROOT = Path(__file__).resolve().parents[1]
SUMMARY = """query($id: ID!, $from: DateTime!, $to: DateTime!) { website(id: $id) {
  stats(range: {from: $from, to: $to}, timezone: "UTC") {
    summary { pageviews events visitors visits bounceRate visitDuration viewsPerVisit }
    pages: breakdown(dimension: PAGE, limit: 100) { rows { value visitors pageviews } }
    sources: breakdown(dimension: SOURCE, limit: 100) { rows { value visitors visits } }
  } } }"""


def footfall(database_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DATABASE_URL": database_url, "JWT_SECRET": JWT_SECRET,
           "ENVIRONMENT": "test"}  # fmt: skip
    out = subprocess.run([sys.executable, "-m", "graph.cli", *args], env=env, cwd=ROOT,
                         capture_output=True, text=True, timeout=180)  # fmt: skip
    assert out.returncode == 0, out.stderr[-3000:]
    return out


async def _stats(client: httpx.AsyncClient, headers: dict[str, str], site: str) -> Any:
    now = datetime.now(UTC)
    v = {"id": site, "from": (now - timedelta(days=40)).isoformat(), "to": now.isoformat()}
    res = await gql(client, SUMMARY, v, headers)
    return res["data"]["website"]["stats"]


async def test_export_import_round_trip(
    client: httpx.AsyncClient, admin_headers: dict[str, str], pool: asyncpg.Pool,
    database_url: str, tmp_path: Path,
) -> None:  # fmt: skip
    source = await make_website(client, admin_headers, domain="round.example")
    footfall(database_url, "demo", "--website", source, "--days", "20", "--visitors", "15",
             "--quiet")  # fmt: skip
    original = await _stats(client, admin_headers, source)
    assert original["summary"]["pageviews"] > 300
    for fmt in ("ndjson", "csv"):
        target = await make_website(client, admin_headers, domain="round.example")
        path = tmp_path / f"events.{fmt}"
        footfall(database_url, "export", "--website", source, "--format", fmt, "-o", str(path),
                 "--quiet")  # fmt: skip
        for _ in range(2):  # idempotent: the second import adds nothing
            footfall(database_url, "import", str(path), "--website", target, "--quiet")
        copy = await _stats(client, admin_headers, target)
        assert copy == original, fmt


async def test_seentics_events_dump_imports(
    client: httpx.AsyncClient, admin_headers: dict[str, str], pool: asyncpg.Pool,
    database_url: str, tmp_path: Path,
) -> None:  # fmt: skip
    site = await make_website(client, admin_headers)
    cols = ["id", "website_id", "visitor_id", "session_id", "event_type", "page", "referrer",
            "user_agent", "ip_address", "country", "city", "browser", "device", "os",
            "utm_source", "utm_medium", "utm_campaign", "utm_term", "utm_content",
            "time_on_page", "properties", "timestamp", "created_at"]  # fmt: skip
    now = datetime.now(UTC)
    rows = [
        {"id": str(uuid.uuid4()), "website_id": site, "visitor_id": "v1", "session_id": "s1",
         "event_type": "pageview", "page": "/", "country": "Local", "ip_address": "10.0.0.1",
         "time_on_page": "0", "timestamp": (now - timedelta(days=50)).isoformat()},
        {"id": str(uuid.uuid4()), "website_id": site, "visitor_id": "v1", "session_id": "s1",
         "event_type": "pageview", "page": "/pricing", "country": "US", "properties": "",
         "timestamp": (now - timedelta(days=50, minutes=-2)).isoformat()},
    ]  # fmt: skip
    path = tmp_path / "seentics_events.csv"
    with path.open("w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=cols)
        w.writeheader()
        w.writerows(rows)
    out = footfall(database_url, "import", str(path), "--quiet")
    assert "imported 2 events" in out.stdout
    got = await pool.fetch(
        "SELECT page, country FROM events WHERE website_id = $1 ORDER BY ts", site
    )
    assert [(r["page"], r["country"]) for r in got] == [("/", None), ("/pricing", "US")]


async def test_import_ignores_the_importers_user_agent_and_location(
    client: httpx.AsyncClient, admin_headers: dict[str, str], pool: asyncpg.Pool
) -> None:
    """The request of an import comes from a program (here one a bot check would drop),
    not from the visitors: only the events' own userAgent and location count."""
    site = await make_website(client, admin_headers)
    mutation = """mutation($in: ImportEventsInput!) {
      importEvents(input: $in) { accepted userErrors { message } } }"""
    when = (datetime.now(UTC) - timedelta(days=3)).isoformat()
    events = [{"visitorId": "i1", "sessionId": "is1", "page": "/a", "timestamp": when},
              {"visitorId": "i2", "sessionId": "is2", "page": "/b", "timestamp": when,
               "userAgent": "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X)"}]  # fmt: skip
    headers = {**admin_headers, "user-agent": "Python-urllib/3.11", "cf-ipcountry": "FR"}
    res = await gql(client, mutation, {"in": {"websiteId": site, "events": events}}, headers)
    assert res["data"]["importEvents"] == {"accepted": 2, "userErrors": []}
    rows = await pool.fetch(
        "SELECT visitor_id, device, country FROM events WHERE website_id = $1 ORDER BY 1", site
    )
    assert [(r["visitor_id"], r["device"], r["country"]) for r in rows] == [
        ("i1", None, None), ("i2", "mobile", None)]  # fmt: skip
