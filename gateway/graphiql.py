"""The GraphiQL page served to browsers at ``GET /graphql``.

Assets (React, ReactDOM, GraphiQL's UMD build and stylesheet) load from an npm-style tree
(``<base>/graphiql@3.9.0/graphiql.min.js``): ``/graphiql-assets``, served by fedgate itself from
``graphiql.assets_dir`` (the demo's default, and all a closed network needs), or a mirror named by
``graphiql.assets_url``, or else unpkg. Every asset carries a Subresource Integrity hash, so a tampered
mirror cannot inject script, and the page's Content-Security-Policy allows only those assets and its own
nonce'd inline scripts. If the assets do not arrive (missing, blocked, altered, or a CDN a closed network
cannot reach), the page says so and how to fix it instead of "Loading GraphiQL…" forever.

Headers typed into GraphiQL (the bearer token) are never written to the browser's storage: the page
gives GraphiQL a storage that drops them (queries and tabs are still remembered).
"""

from __future__ import annotations

import html
import json
import secrets
from dataclasses import dataclass
from urllib.parse import urlsplit


@dataclass(frozen=True)
class Asset:
    path: str
    integrity: str
    kind: str  # "script" or "style"


ASSETS: tuple[Asset, ...] = (
    Asset(
        "react@18.3.1/umd/react.production.min.js",
        "sha384-DGyLxAyjq0f9SPpVevD6IgztCFlnMF6oW/XQGmfe+IsZ8TqEiDrcHkMLKI6fiB/Z",
        "script",
    ),
    Asset(
        "react-dom@18.3.1/umd/react-dom.production.min.js",
        "sha384-gTGxhz21lVGYNMcdJOyq01Edg0jhn/c22nsx0kyqP0TxaV5WVdsSH1fSDUf5YJj1",
        "script",
    ),
    Asset(
        "graphiql@3.9.0/graphiql.min.js",
        "sha384-8NGfVj4CVlqHajlZj+bPJT4thxPMHMJYn7DWK2CvtopLd02E7qsPHazniBYvVjOO",
        "script",
    ),
    Asset(
        "graphiql@3.9.0/graphiql.min.css",
        "sha384-QMux00XgRtwRLSYIY3kw2rj1ovk5AuuliAchk+HSQbqdbGFnz9GYuqIlOqxhwCE2",
        "style",
    ),
)

LOCAL_ASSETS_PATH = "/graphiql-assets"
PUBLIC_ASSETS_URL = "https://unpkg.com"
#: How long the page waits for its assets before saying they are not coming.
ASSETS_PATIENCE_MS = 10_000

_PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>fedgate · GraphiQL</title>
{styles}
<style>html, body, #graphiql {{ height: 100%; margin: 0; }}</style>
</head>
<body>
<div id="graphiql">Loading GraphiQL…</div>
<script nonce="{nonce}">
  // Say why, and how to fix it, when GraphiQL's assets do not arrive: a closed network cannot reach a
  // public CDN, and a browser waiting for one shows nothing at all.
  window.fedgateAssetsProblem = (what) => {{
    if (document.getElementById("fedgate-assets-problem")) return;
    const box = document.getElementById("graphiql");
    box.replaceChildren();
    const panel = document.createElement("div");
    panel.id = "fedgate-assets-problem";
    panel.setAttribute("role", "alert");
    panel.style.cssText = "font: 16px/1.5 system-ui, sans-serif; max-width: 46em; margin: 3em auto; padding: 0 1em";
    const lines = [
      ["h1", "GraphiQL could not start"],
      ["p", "Its files " + what + " from " + {assets_base} + "."],
      ["p", "On a closed network, fetch them once where the npm registry can be reached: "
            + "fedgate graphiql-assets ./graphiql-assets, then set graphiql.assets_dir: ./graphiql-assets "
            + "in fedgate.yaml (fedgate serves them itself). Or point graphiql.assets_url at a mirror."],
      ["p", "Each file is checked against its integrity hash, so an altered copy is refused too."],
      ["p", "The GraphQL endpoint itself works: POST queries to this URL."],
    ];
    for (const [tag, text] of lines) {{
      const element = document.createElement(tag);
      element.textContent = text;
      panel.append(element);
    }}
    box.append(panel);
  }};
  window.setTimeout(() => {{
    if (typeof window.GraphiQL === "undefined") window.fedgateAssetsProblem("did not arrive within {patience} seconds");
  }}, {patience_ms});
</script>
{scripts}
<script nonce="{nonce}">
  if (typeof window.React === "undefined" || typeof window.ReactDOM === "undefined"
      || typeof window.GraphiQL === "undefined") {{
    window.fedgateAssetsProblem("could not be loaded");
    throw new Error("GraphiQL's assets did not load");
  }}
  // GraphiQL keeps editors, tabs and history in localStorage; the Headers tab holds bearer tokens, which
  // must never be written to the browser. This storage drops the headers and strips them from whatever
  // else it saves (tabs, history, favourites).
  const withoutHeaders = (value) => {{
    if (Array.isArray(value)) return value.map(withoutHeaders);
    if (value && typeof value === "object") {{
      return Object.fromEntries(
        Object.entries(value).map(([name, item]) => [name, name === "headers" ? "" : withoutHeaders(item)])
      );
    }}
    return value;
  }};
  const storage = {{
    get length() {{ return window.localStorage.length; }},
    key: (index) => window.localStorage.key(index),
    clear: () => window.localStorage.clear(),
    getItem: (key) => window.localStorage.getItem(key),
    removeItem: (key) => window.localStorage.removeItem(key),
    setItem: (key, value) => {{
      if (key.endsWith("headers")) return;
      let parsed;
      try {{ parsed = JSON.parse(value); }} catch (error) {{ parsed = undefined; }}
      window.localStorage.setItem(key, parsed === undefined ? value : JSON.stringify(withoutHeaders(parsed)));
    }},
  }};
  // GraphiQL's schema fetch (the Docs panel, autocompletion) reads the Headers tab as it was when the page
  // loaded, so a token pasted in later would never reach it: the fetcher adds the current headers to any
  // request GraphiQL sends without them.
  let editedHeaders = {{}};
  const headersOf = (text) => {{
    try {{
      const parsed = JSON.parse(text || "{{}}");
      return parsed && typeof parsed === "object" && !Array.isArray(parsed) ? parsed : {{}};
    }} catch (error) {{ return {{}}; }}
  }};
  const sendJSON = GraphiQL.createFetcher({{ url: new URL("graphql", window.location.href).toString() }});
  const fetcher = (params, options) => sendJSON(params, {{
    ...options, headers: {{ ...editedHeaders, ...((options && options.headers) || {{}}) }},
  }});
  ReactDOM.createRoot(document.getElementById("graphiql")).render(
    React.createElement(GraphiQL, {{
      fetcher,
      storage,
      isHeadersEditorEnabled: true,
      shouldPersistHeaders: false,
      defaultEditorToolsVisibility: true,
      onEditHeaders: (text) => {{ editedHeaders = headersOf(text); }},
      defaultQuery: {default_query},
    }})
  );
</script>
</body>
</html>
"""

DEFAULT_QUERY = """# fedgate: federated, policy-checked queries over departmental data.
# Put your token in the Headers tab: {"Authorization": "Bearer <token>"}, then press
# "Re-fetch GraphQL schema" (the circular arrow, or Shift+Ctrl+R) to load what it may see.
# Explore the departments in the Docs panel, then run e.g.:
{
  health {
    patients(limit: 5, orderBy: [{familyName: ASC}]) {
      nhsNumber
      givenName
      familyName
      dateOfBirth
    }
  }
}
"""


@dataclass(frozen=True)
class Page:
    """The rendered page and the Content-Security-Policy that goes with it."""

    html: str
    content_security_policy: str


def render(assets_url: str) -> Page:
    """The GraphiQL page loading its assets from ``assets_url``, with a fresh script nonce."""
    base = assets_url.rstrip("/")
    nonce = secrets.token_urlsafe(16)
    tags: dict[str, list[str]] = {"script": [], "style": []}
    for asset in ASSETS:
        url = html.escape(f"{base}/{asset.path}", quote=True)
        if asset.kind == "script":
            tags["script"].append(
                f'<script src="{url}" integrity="{asset.integrity}" crossorigin="anonymous"></script>'
            )
        else:
            tags["style"].append(
                f'<link rel="stylesheet" href="{url}" integrity="{asset.integrity}" crossorigin="anonymous">'
            )
    parts = urlsplit(base)
    origin = f"{parts.scheme}://{parts.netloc}" if parts.scheme else "'self'"
    policy = (
        f"default-src 'none'; script-src 'nonce-{nonce}' {origin}; style-src {origin} 'unsafe-inline'; "
        f"font-src {origin} data:; img-src 'self' data: {origin}; connect-src 'self'; base-uri 'none'; "
        "frame-ancestors 'none'; form-action 'none'"
    )
    page = _PAGE.format(
        styles="\n".join(tags["style"]),
        scripts="\n".join(tags["script"]),
        nonce=nonce,
        default_query=_js_string(DEFAULT_QUERY),
        assets_base=_js_string(base),
        patience=ASSETS_PATIENCE_MS // 1000,
        patience_ms=ASSETS_PATIENCE_MS,
    )
    return Page(page, policy)


def _js_string(text: str) -> str:
    """A JavaScript string literal safe inside a <script> element."""
    return json.dumps(text).replace("<", "\\u003c").replace(">", "\\u003e")
