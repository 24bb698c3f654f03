"""``footfall`` — the one console script.

    footfall serve                      run the API (embedded PostgreSQL without DATABASE_URL)
    footfall migrate                    apply pending migrations and exit
    footfall website add ID --domain D [--timezone TZ] [--name N] [--public]
    footfall website list
    footfall token create --websites ID,ID|'*' --scope read|write|admin [--ttl 30d]
    footfall import FILE                NDJSON events (website_id on each line), with progress
    footfall schema                     print the GraphQL schema (SDL)
    footfall assets                     fetch GraphiQL files from the npm registry (offline IDE)

Configuration comes only from the environment (see ``graph/settings.py``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import orjson

from graph.settings import Settings, SettingsError

TRACKER_SNIPPET = (
    '<script async src="{base}/tracker.js" data-site-id="{site}" data-api-host="{base}"></script>'
)


@contextlib.asynccontextmanager
async def _runtime(settings: Settings) -> AsyncIterator[Any]:
    """Start the app's lifespan (pools, migrations, writer) without serving HTTP."""
    from graph.app import create_app

    app = create_app(settings.with_(background_jobs=False))
    async with app.router.lifespan_context(app):
        yield app.state.runtime


def app_from_env() -> Any:
    """uvicorn factory: ``footfall serve`` passes this with ``factory=True``."""
    from graph.app import create_app
    from graph.logs import configure

    settings = Settings.from_env()
    configure(settings.log_level)
    return create_app(settings)


def _serve(settings: Settings) -> int:
    import uvicorn

    from graph.auth import create_token

    base = f"http://{settings.host if settings.host != '0.0.0.0' else '127.0.0.1'}:{settings.port}"
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
    return 0


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
                "timezone": args.timezone, "is_public": args.public,
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


def _ndjson(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    with path.open("rb") as fh:
        for n, line in enumerate(fh, 1):
            if line.strip():
                yield n, orjson.loads(line)


async def _import(settings: Settings, args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from resolvers.errors import UserError
    from resolvers.tracking import TrackRequest, track

    path = Path(args.file)
    total_lines = sum(1 for _ in path.open("rb"))
    chunk: dict[str, list[dict[str, Any]]] = {}
    stored = 0
    async with _runtime(settings) as rt:

        async def flush(site: str) -> None:
            nonlocal stored
            events = chunk.pop(site)
            result = await track(rt, TrackRequest(site, events, "import", door="import"))
            stored += result.stored

        with tqdm(total=total_lines, unit="ev", file=sys.stderr, disable=args.quiet) as bar:
            try:
                for n, event in _ndjson(path):
                    site = str(event.get("website_id") or args.website or "")
                    if not site:
                        print(f"error: line {n}: website_id missing", file=sys.stderr)
                        return 2
                    chunk.setdefault(site, []).append(event)
                    if len(chunk[site]) >= 5000:
                        await flush(site)
                    bar.update(1)
                for site in list(chunk):
                    await flush(site)
            except UserError as exc:
                print(f"error: {exc.message}", file=sys.stderr)
                return 2
    print(f"imported {stored} events")
    return 0


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="footfall", description="Footfall web analytics")
    sub = p.add_subparsers(dest="command", required=True)
    sub.add_parser("serve", help="run the API server")
    sub.add_parser("migrate", help="apply pending migrations")
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
    web.add_parser("list", help="list websites")
    tok = sub.add_parser("token", help="JWT tokens").add_subparsers(dest="action", required=True)
    create = tok.add_parser("create", help="create a token; prints it as the last word")
    create.add_argument("--websites", required=True, help="comma-separated ids or '*'")
    create.add_argument("--scope", required=True, choices=["read", "write", "admin"])
    create.add_argument("--ttl", default="30d")
    create.add_argument("--subject", default="cli")
    imp = sub.add_parser("import", help="import NDJSON events")
    imp.add_argument("file")
    imp.add_argument("--website", help="website id for lines without website_id")
    imp.add_argument("--quiet", action="store_true")
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
    if args.command == "migrate":
        return asyncio.run(_migrate(settings))
    if args.command == "website":
        if args.action == "add":
            return asyncio.run(_website_add(settings, args))
        return asyncio.run(_website_list(settings))
    if args.command == "import":
        return asyncio.run(_import(settings, args))
    return 2


if __name__ == "__main__":
    sys.exit(main())
