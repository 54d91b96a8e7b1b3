"""The demo federation in a temporary folder, for tests: its settings, catalog and policy copied, the data
generated (SQLite files and the housing rows) and the housing REST API served on a free loopback port.

The housing API is the real :mod:`demo.housing_api` app, served by uvicorn (so fedgate reaches it over
HTTP exactly as in ``fedgate demo``) and wrapped to record each request it answers.
"""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from starlette.types import ASGIApp, Receive, Scope, Send

from demo.generate import generate
from demo.housing_api import TOKEN_ENV, HousingData, create_app, write_housing_data
from demo.load import write_sqlite
from demo.run import PURPOSES, TOKEN_PURPOSES, ensure_audit_key
from gateway.policy.purposes import Purpose
from gateway.policy.secrets import PolicySecrets
from gateway.policy.store import Policy, policy_from_settings
from gateway.principal import Principal
from gateway.settings import Settings, load_settings
from schema.catalog import Catalog, load_catalog
from schema.sources import SqliteSource
from tests.support.servers import free_port, serving

DEMO = Path(__file__).parents[2] / "demo"
DEMO_URL = "http://127.0.0.1:8002"
TOKEN = "a-test-housing-service-token-0123456789"


class Recorder:
    """ASGI middleware keeping the path and query string of every request."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.requests: list[tuple[str, str]] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            self.requests.append((scope["path"], scope["query_string"].decode()))
        await self.app(scope, receive, send)


@dataclass
class DemoFederation:
    """A generated demo in ``directory`` with its housing API running at ``housing_url``."""

    directory: Path
    settings: Settings
    catalog: Catalog
    rows: dict[str, list[dict[str, Any]]]
    housing_url: str
    recorder: Recorder

    @property
    def data(self) -> Path:
        return self.directory / "data"

    def policy(self, catalog: Catalog) -> Policy | None:
        """The demo's policy over ``catalog``, with the demo's configured secret (the same pseudonyms every
        time, as ``fedgate serve`` would give)."""
        path = self.settings.policy.secret_path
        assert path is not None
        return policy_from_settings(self.settings, catalog, PolicySecrets.from_file(path))


@contextlib.asynccontextmanager
async def demo_federation(directory: Path, people: int = 1500) -> AsyncIterator[DemoFederation]:
    """Generate the demo for ``people`` into ``directory`` and serve its housing API until the block ends.

    ``FEDGATE_DEMO_HOUSING_TOKEN`` is set (to :data:`TOKEN`) for the block, as ``fedgate demo`` sets it.
    """
    for name in ("catalog.yaml", "policy.yaml", "fedgate.yaml"):
        shutil.copy(DEMO / name, directory / name)
    shutil.copytree(DEMO / "agreements", directory / "agreements")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    catalog_file = directory / "catalog.yaml"
    text = catalog_file.read_text()
    assert DEMO_URL in text
    catalog_file.write_text(text.replace(DEMO_URL, url))
    rows = generate(people=people)
    with pytest.MonkeyPatch.context() as environment:
        environment.setenv(TOKEN_ENV, TOKEN)
        settings = load_settings(directory / "fedgate.yaml")
        ensure_audit_key(settings)
        catalog = load_catalog(settings.catalog_path)
        for department in catalog.departments:
            if isinstance(department.source, SqliteSource):
                write_sqlite(department.source.file, catalog, department, rows)
        housing_file = directory / "data" / "housing.json"
        write_housing_data(housing_file, rows)
        recorder = Recorder(create_app(HousingData.load(housing_file), TOKEN))
        async with serving(recorder, port):
            yield DemoFederation(directory, settings, catalog, rows, url, recorder)


def client(settings: Settings, client_id: str) -> Principal:
    """The principal of a demo client's token, asking for the purpose the demo gives it (demo/run.py)."""
    assert settings.dev_issuer is not None
    definition = settings.dev_issuer.client(client_id)
    assert definition is not None
    name, justification = PURPOSES[client_id]
    source = "token" if client_id in TOKEN_PURPOSES else "header"
    return Principal(
        subject=client_id, client_id=client_id, scopes=frozenset(definition.scopes),
        attributes=dict(definition.claims), authenticated=True, purpose=Purpose(name, source, justification),
    )  # fmt: skip
