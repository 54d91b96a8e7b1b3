"""The documentation keeps up with the code: every setting, catalog key and error code is documented."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from gateway.errors import error_codes
from gateway.policy.secrets import MIN_SECRET_BYTES
from gateway.settings import Settings
from schema.catalog import Catalog
from schema.credentials import BasicCredential, BearerCredential, ClientCredentials, NoCredential, TokenExchange
from schema.endpoints import (
    CursorPagination,
    LinkPagination,
    NoGraphQLPagination,
    NoPagination,
    OffsetGraphQLPagination,
    OffsetPagination,
    PageNumberPagination,
    RelayGraphQLPagination,
)
from schema.http_sources import GraphQLSource, HttpSource, RestSource
from schema.sources import BreakerSettings, MySQLSource, PostgresSource, SourceSettings, SqliteSource

DOCS = Path(__file__).parent.parent / "docs"


def _paths(model: type[BaseModel], prefix: str = "") -> list[str]:
    """Dotted keys of a settings model, nested models expanded, lists written as ``name[]``."""
    paths: list[str] = []
    for name, field in model.model_fields.items():
        key = field.alias or name
        annotation = field.annotation
        inner = getattr(annotation, "__args__", (annotation,))[0]
        optional = getattr(annotation, "__args__", ())
        if len(optional) == 2 and type(None) in optional and isinstance(inner, type) and issubclass(inner, BaseModel):
            paths.append(f"{prefix}{key}")  # an optional section: itself and its keys
            annotation = inner
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            paths.extend(_paths(annotation, f"{prefix}{key}."))
        elif (
            getattr(annotation, "__origin__", None) is list and isinstance(inner, type) and issubclass(inner, BaseModel)
        ):
            paths.append(f"{prefix}{key}")
            paths.extend(_paths(inner, f"{prefix}{key}[]."))
        else:
            paths.append(f"{prefix}{key}")
    return paths


def test_every_setting_is_documented() -> None:
    text = (DOCS / "configuration.md").read_text()
    missing = [path for path in _paths(Settings) if f"`{path}`" not in text]
    assert missing == []


def test_every_catalog_key_is_documented() -> None:
    text = (DOCS / "configuration.md").read_text()
    missing = [path for path in _paths(Catalog) if f"`{path}`" not in text]
    assert missing == []


@pytest.mark.parametrize(
    "source",
    [
        SqliteSource,
        PostgresSource,
        MySQLSource,
        RestSource,
        GraphQLSource,
        NoCredential,
        BearerCredential,
        BasicCredential,
        ClientCredentials,
        TokenExchange,
        NoPagination,
        PageNumberPagination,
        OffsetPagination,
        CursorPagination,
        LinkPagination,
        NoGraphQLPagination,
        OffsetGraphQLPagination,
        RelayGraphQLPagination,
    ],
)
def test_every_source_key_is_documented(source: type[BaseModel]) -> None:
    section = (DOCS / "configuration.md").read_text().split("### Sources", 1)[1]
    missing = [name for name in source.model_fields if f"`{name}`" not in section]
    assert missing == []


def test_every_policy_key_is_documented() -> None:
    from gateway.policy.model import PolicyDocument

    text = (DOCS / "configuration.md").read_text().split("## Policy file", 1)[1]
    missing = [path for path in _paths(PolicyDocument) if f"`{path}`" not in text]
    assert missing == []


def test_every_error_code_is_documented() -> None:
    text = (DOCS / "errors.md").read_text()
    missing = [code for code in error_codes() if f"`{code}`" not in text]
    assert missing == []


def test_the_policy_secrets_minimum_is_the_one_documented() -> None:
    for page in ("configuration.md", "security.md"):
        text = (DOCS / page).read_text()
        assert f"at least {MIN_SECRET_BYTES} bytes" in text.replace("**", ""), page
        assert "MIN_SECRET_BYTES" in text, page


_LIMIT = re.compile(r"(timeout|_seconds$|^max_|\.max_|_bytes$|_size$|^failures$|\.failures$|max_concurrency)")


def _limit_settings() -> dict[str, object]:
    """Every setting that is a timeout or a limit, with its default: fedgate.yaml's, then a source's."""
    found: dict[str, object] = {}
    for path in _paths(Settings):
        if _LIMIT.search(path.rsplit(".", 1)[-1]):
            model: Any = Settings
            for part in path.replace("[]", "").split(".")[:-1]:
                annotation = model.model_fields[part].annotation
                model = next(arg for arg in (*getattr(annotation, "__args__", ()), annotation) if _is_model(arg))
            found[path] = model.model_fields[path.rsplit(".", 1)[-1]].default
    for model, prefix in ((SourceSettings, "source."), (HttpSource, "source."), (BreakerSettings, "source.breaker.")):
        for name, field in model.model_fields.items():
            if _LIMIT.search(name):
                found[prefix + name] = field.default
    return found


def _is_model(annotation: object) -> bool:
    return isinstance(annotation, type) and issubclass(annotation, BaseModel)


def test_every_timeout_and_limit_is_in_the_deployment_table_with_its_default() -> None:
    section = (DOCS / "deployment.md").read_text().split("## Timeouts and limits", 1)[1]
    rows = {
        cells[1].strip("` "): cells[2].strip()
        for line in section.splitlines()
        if line.startswith("| `") and len(cells := line.split("|")) > 3
    }
    limits = _limit_settings()
    assert {"server.header_timeout_seconds", "source.breaker.failures", "auth.max_token_bytes"} <= set(limits)
    missing = [path for path in limits if path not in rows]
    assert missing == []
    wrong = {
        path: (rows[path], default)
        for path, default in limits.items()
        if default is not None and rows[path] != (f"{default:g}" if isinstance(default, float) else str(default))
    }
    assert wrong == {}
