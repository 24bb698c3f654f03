"""GraphiQL that works offline: the service serves the GraphiQL, React and explorer
files itself. They come from the npm registry at install/build time (``footfall assets``,
a Dockerfile step), are checked against the registry's sha512 integrity, and are never
committed nor loaded from a CDN. Without them ``/graphql`` shows how to fetch them.
"""

from __future__ import annotations

import base64
import hashlib
import io
import tarfile
import urllib.request
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import BaseRoute, Route

REGISTRY = "https://registry.npmjs.org"


@dataclass(frozen=True)
class Package:
    name: str
    version: str
    integrity: str  # the registry's dist.integrity (sha512, base64)
    files: dict[str, str]  # path inside the tarball → file name served


PACKAGES = (
    Package("react", "18.3.1",
            "sha512-wS+hAgJShR0KhEvPJArfuPVN1+Hz1t0Y6n5jLrGQbkb4urgPE/0Rve+1kMB1v/oWgHgm4WIcV+i7F2pTVj+2iQ==",
            {"package/umd/react.production.min.js": "react.production.min.js"}),
    Package("react-dom", "18.3.1",
            "sha512-5m4nQKp+rZRb09LNH59GM4BxTh9251/ylbKIbpe7TpGxfJ+9kv6BLkLBXIjjspbgbnIBNqlI23tRnTWT0snUIw==",
            {"package/umd/react-dom.production.min.js": "react-dom.production.min.js"}),
    Package("graphiql", "3.8.3",
            "sha512-cuPDYtXVKV86Pu5PHBX642Odi/uVEE2y1Jxq5rGO/Qy1G2lRp7ZZ7a/T30RzxhuLSWo9zUbzq0P3U49//H0Ugw==",
            {"package/graphiql.min.js": "graphiql.min.js", "package/graphiql.min.css": "graphiql.min.css"}),
    Package("@graphiql/plugin-explorer", "3.2.6",
            "sha512-MXzG/zVNzZfes4Em253bHyAbD/lwwAZkPKvxCAQkjz0i3dtcv4uF3D8iqJ7214iu3SCphbORYZZUC93fik1yew==",
            {"package/dist/index.umd.js": "plugin-explorer.umd.js",
             "package/dist/style.css": "plugin-explorer.css"}),
)  # fmt: skip

EXAMPLE_QUERY = """# A whole dashboard in one request. Set the website id in Variables.
query Dashboard($id: ID!) {
  website(id: $id) {
    name
    stats(range: {preset: LAST_30_DAYS}) {
      summary(compare: true) {
        visitors visits pageviews bounceRate visitDuration viewsPerVisit
        change { visitors visits pageviews }
      }
      timeseries(interval: DAY) { start visitors pageviews }
      pages: breakdown(dimension: PAGE) { rows { value visitors pageviews share } totalRows }
      sources: breakdown(dimension: SOURCE) { rows { value visitors bounceRate } }
      countries: breakdown(dimension: COUNTRY) { rows { value visitors } }
      devices: breakdown(dimension: DEVICE) { rows { value visitors } }
    }
    realtime { visitors pageviews topPages { value visitors } }
  }
}
"""


def vendor_dir() -> Path:
    return Path(str(resources.files("graph").joinpath("static"))) / "vendor"


def have_assets() -> bool:
    d = vendor_dir()
    return all((d / f).is_file() for p in PACKAGES for f in p.files.values())


def fetch_assets(registry: str = REGISTRY) -> list[Path]:
    """Download the packages' tarballs, verify integrity, extract the served files."""
    out = vendor_dir()
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for pkg in PACKAGES:
        base = pkg.name.split("/")[-1]
        url = f"{registry}/{pkg.name}/-/{base}-{pkg.version}.tgz"
        # the URL is https://registry.npmjs.org (or a registry the caller passes) plus
        # pinned package names; the bytes are checked against pinned integrity hashes
        with urllib.request.urlopen(url, timeout=60) as resp:  # nosec B310
            data = resp.read()
        digest = "sha512-" + base64.b64encode(hashlib.sha512(data).digest()).decode()
        if digest != pkg.integrity:
            raise RuntimeError(f"{pkg.name}@{pkg.version}: integrity mismatch")
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
            for member, name in pkg.files.items():
                extracted = tar.extractfile(member)
                if extracted is None:
                    raise RuntimeError(f"{pkg.name}: {member} missing from the tarball")
                (out / name).write_bytes(extracted.read())
                written.append(out / name)
    return written


_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Footfall GraphiQL</title>
<link rel="stylesheet" href="/graphiql/vendor/graphiql.min.css">
<link rel="stylesheet" href="/graphiql/vendor/plugin-explorer.css">
<style>html,body,#graphiql{height:100%;margin:0}</style></head>
<body><div id="graphiql">Loading GraphiQL…</div>
<script src="/graphiql/vendor/react.production.min.js"></script>
<script src="/graphiql/vendor/react-dom.production.min.js"></script>
<script src="/graphiql/vendor/graphiql.min.js"></script>
<script src="/graphiql/vendor/plugin-explorer.umd.js"></script>
<script>
  const fetcher = GraphiQL.createFetcher({ url: location.origin + "/graphql",
    subscriptionUrl: location.origin.replace(/^http/, "ws") + "/graphql" });
  const explorer = GraphiQLPluginExplorer.explorerPlugin();
  ReactDOM.createRoot(document.getElementById("graphiql")).render(
    React.createElement(GraphiQL, { fetcher, plugins: [explorer],
      defaultQuery: __QUERY__, defaultHeaders: __HEADERS__,
      variables: '{"id": "my-site"}' }));
</script></body></html>
"""

_MISSING = """<!doctype html><html><head><meta charset="utf-8"><title>Footfall GraphiQL</title></head>
<body><h1>GraphiQL assets are not installed</h1>
<p>Run <code>footfall assets</code> once (it fetches GraphiQL and React from the npm registry
and checks their integrity); the page then works with no internet access.</p>
<p>The API itself works: POST GraphQL to <code>/graphql</code>.</p></body></html>
"""


def graphiql_page(dev_token: str | None = None) -> Response:
    """The IDE page; in development ``dev_token`` (a local admin token) is prefilled."""
    if not have_assets():
        return HTMLResponse(_MISSING)
    import json

    headers = json.dumps({"Authorization": f"Bearer {dev_token}"}) if dev_token else ""
    page = _PAGE.replace("__QUERY__", json.dumps(EXAMPLE_QUERY))
    return HTMLResponse(page.replace("__HEADERS__", json.dumps(headers)))


async def vendor_file(request: Request) -> Response:
    name = request.path_params["name"]
    allowed = {f for p in PACKAGES for f in p.files.values()}
    path = vendor_dir() / name
    if name not in allowed or not path.is_file():
        return Response("not found", status_code=404)
    kind = "text/css" if name.endswith(".css") else "application/javascript"
    return Response(path.read_bytes(), media_type=f"{kind}; charset=utf-8",
                    headers={"Cache-Control": "public, max-age=86400"})  # fmt: skip


def graphiql_routes() -> list[BaseRoute]:
    return [Route("/graphiql/vendor/{name}", vendor_file, methods=["GET"])]
