"""``footfall`` — the one console script.

    footfall serve                      run the API (embedded PostgreSQL without DATABASE_URL)
    footfall migrate                    apply pending migrations and exit
    footfall writer [--name N]          commit queued events (INGEST_QUEUE=redis); run any number
    footfall doctor                     check database, TimescaleDB, Redis, GeoIP, assets
    footfall website add ID --domain D [--timezone TZ] [--name N] [--public] [--owner ACCOUNT]
    footfall website list
    footfall token create --websites ID,ID|'*' --scope read|write|admin [--ttl 30d]
    footfall import FILE                NDJSON / CSV events (website_id on each line), with progress
    footfall export --website ID [--from T] [--to T] [--format ndjson|csv] [-o FILE]
    footfall demo [--website demo]      a demo website with a month of traffic
    footfall schema                     print the GraphQL schema (SDL)
    footfall assets                     fetch GraphiQL files from the npm registry (offline IDE)

Configuration comes only from the environment (see ``graph/settings.py``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
from collections.abc import AsyncIterator
from typing import Any

from graph.settings import Settings, SettingsError

TRACKER_SNIPPET = (
    '<script async src="{base}/tracker.js" data-site-id="{site}" data-api-host="{base}"></script>'
)


@contextlib.asynccontextmanager
async def _runtime(settings: Settings) -> AsyncIterator[Any]:
    """Start the app's lifespan (pools, migrations, writer) without serving HTTP. One-shot
    commands write through the direct group commit even when the API queues (a command's
    return then means committed)."""
    from graph.app import create_app

    app = create_app(settings.with_(background_jobs=False, ingest_queue="direct"))
    async with app.router.lifespan_context(app):
        yield app.state.runtime


def app_from_env() -> Any:
    """uvicorn factory: ``footfall serve`` passes this with ``factory=True``."""
    from graph.app import create_app
    from graph.logs import configure

    settings = Settings.from_env()
    configure(settings.log_level)
    return create_app(settings)


#: Logged once by ``footfall serve`` (the parent, before its workers start).
WORKERS_WITHOUT_REDIS = (
    "WORKER_COUNT={n} without REDIS_URL: caches, rate limits, session claims and realtime "
    "are per worker (set REDIS_URL to share them); the stats and response caches are off so "
    "that every worker answers with every commit"
)


def _serve(settings: Settings) -> int:
    import logging

    from graph.auth import create_token
    from graph.logs import configure
    from graph.metrics import multiproc_dir

    if settings.workers_without_redis:
        configure(settings.log_level)
        logging.getLogger("footfall").warning(
            WORKERS_WITHOUT_REDIS.format(n=settings.worker_count)
        )

    # bandit B104: not a bind; the printed URL uses loopback when listening on all interfaces
    base = f"http://{settings.host if settings.host != '0.0.0.0' else '127.0.0.1'}:{settings.port}"  # nosec B104
    if not settings.production:
        token = create_token(settings, subject="local-admin", websites="*", scope="admin",
                             ttl_seconds=30 * 86400)  # fmt: skip
        where = (
            settings.database_url
            and "DATABASE_URL"
            or f"embedded PostgreSQL in {settings.data_dir}"
        )
        print(f"Footfall on {base} ({where})", file=sys.stderr)
        print(f"GraphiQL:          {base}/graphql", file=sys.stderr)
        print(f"Local admin token: {token}", file=sys.stderr)
    with multiproc_dir(settings.worker_count):  # metrics of every worker (graph/metrics.py)
        _run_uvicorn(settings)
    return 0


def _run_uvicorn(settings: Settings) -> None:
    import uvicorn

    uvicorn.run(
        "graph.cli:app_from_env",
        factory=True,
        host=settings.host,
        port=settings.port,
        workers=settings.worker_count,
        log_level=settings.log_level,
        loop="uvloop" if sys.platform != "win32" else "asyncio",
        http="httptools",
        timeout_graceful_shutdown=30,
        access_log=False,
        proxy_headers=False,
    )


async def _migrate(settings: Settings) -> int:
    async with _runtime(settings):
        print("migrations applied")
    return 0


async def _website_add(settings: Settings, args: argparse.Namespace) -> int:
    from resolvers import websites
    from resolvers.access import Principal
    from resolvers.errors import UserError

    async with _runtime(settings) as rt:
        try:
            row = await websites.create(rt, Principal.superuser("cli"), {
                "id": args.id, "domain": args.domain, "name": args.name,
                "timezone": args.timezone, "is_public": args.public, "owner_id": args.owner,
            })  # fmt: skip
        except UserError as exc:
            print(f"error: {exc.message}", file=sys.stderr)
            return 2
    base = f"http://127.0.0.1:{settings.port}"
    print(f"website {row.id} ({row.domain}, {row.timezone}) added")
    print("tracker snippet:")
    print(TRACKER_SNIPPET.format(base=base, site=row.id))
    return 0


async def _website_list(settings: Settings) -> int:
    from db.queries import websites as website_sql

    async with _runtime(settings) as rt:
        rows = await website_sql.list_all(rt.pools.read)
    for r in rows:
        print(
            f"{r.id}\t{r.domain}\t{r.timezone}\t{'public' if r.is_public else 'private'}\t{r.name or ''}"
        )
    return 0


def _token_create(settings: Settings, args: argparse.Namespace) -> int:
    from graph.auth import create_token, parse_ttl

    sites: list[str] | str = (
        "*"
        if args.websites.strip() == "*"
        else [s.strip() for s in args.websites.split(",") if s.strip()]
    )
    if not sites:
        print("error: --websites needs ids or '*'", file=sys.stderr)
        return 2
    try:
        ttl = parse_ttl(args.ttl)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    token = create_token(settings, subject=args.subject, websites=sites, scope=args.scope,
                         ttl_seconds=ttl)  # fmt: skip
    print(token)
    return 0


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="footfall", description="Footfall web analytics")
    sub = p.add_subparsers(dest="command", required=True)
    sub.add_parser("serve", help="run the API server")
    sub.add_parser("migrate", help="apply pending migrations")
    wr = sub.add_parser("writer", help="commit events queued in Redis (INGEST_QUEUE=redis)")
    wr.add_argument("--name", help="consumer name (default: host-pid-random)")
    sub.add_parser("doctor", help="check database, TimescaleDB, Redis, GeoIP, assets")
    sub.add_parser("schema", help="print the GraphQL schema (SDL)")
    sub.add_parser("assets", help="fetch GraphiQL/React from the npm registry (offline GraphiQL)")
    web = sub.add_parser("website", help="manage websites").add_subparsers(
        dest="action", required=True
    )
    add = web.add_parser("add", help="add a website")
    add.add_argument("id")
    add.add_argument("--domain", required=True)
    add.add_argument("--timezone", default="UTC")
    add.add_argument("--name")
    add.add_argument("--public", action="store_true")
    add.add_argument("--owner", help="owning account (Seentics user id; privacy routes)")
    web.add_parser("list", help="list websites")
    tok = sub.add_parser("token", help="JWT tokens").add_subparsers(dest="action", required=True)
    create = tok.add_parser("create", help="create a token; prints it as the last word")
    create.add_argument("--websites", required=True, help="comma-separated ids or '*'")
    create.add_argument("--scope", required=True, choices=["read", "write", "admin"])
    create.add_argument("--ttl", default="30d")
    create.add_argument("--subject", default="cli")
    imp = sub.add_parser("import", help="import events: NDJSON, our CSV, or a Seentics events CSV")
    imp.add_argument("file")
    imp.add_argument("--website", help="store every event under this website id")
    imp.add_argument("--quiet", action="store_true")
    exp = sub.add_parser("export", help="export a website's events (streamed)")
    exp.add_argument("--website", required=True)
    exp.add_argument("--from", dest="from_", help="start (ISO 8601, UTC when no offset)")
    exp.add_argument("--to", help="end, exclusive")
    exp.add_argument("--format", choices=["ndjson", "csv"], default="ndjson")
    exp.add_argument("--output", "-o", help="file (default: stdout)")
    exp.add_argument("--quiet", action="store_true")
    demo = sub.add_parser("demo", help="create a demo website with a month of traffic")
    demo.add_argument("--website", default="demo")
    demo.add_argument("--days", type=int, default=30)
    demo.add_argument("--visitors", type=int, default=150, help="visitors per day")
    demo.add_argument("--quiet", action="store_true")
    return p


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "schema":
        from graph.schema import schema

        print(str(schema))
        return 0
    if args.command == "assets":
        from graph.graphiql import fetch_assets

        for path in fetch_assets():
            print(f"wrote {path}")
        return 0
    try:
        settings = Settings.from_env()
    except SettingsError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return 2
    if args.command == "serve":
        return _serve(settings)
    if args.command == "token":
        return _token_create(settings, args)
    if args.command == "doctor":
        from graph import doctor

        return asyncio.run(doctor.run(settings))
    if args.command == "migrate":
        return asyncio.run(_migrate(settings))
    if args.command == "writer":
        from graph.cli_writer import run_writer

        return run_writer(settings, _runtime, args.name)
    if args.command == "website":
        if args.action == "add":
            return asyncio.run(_website_add(settings, args))
        return asyncio.run(_website_list(settings))
    if args.command in ("import", "export", "demo"):
        from graph import cli_data

        def runtime() -> Any:
            return _runtime(settings)

        if args.command == "import":
            return asyncio.run(cli_data.run_import(runtime, args))
        if args.command == "export":
            return asyncio.run(cli_data.run_export(runtime, args))
        return asyncio.run(cli_data.run_demo(runtime, args, settings.port))
    return 2


if __name__ == "__main__":
    sys.exit(main())
