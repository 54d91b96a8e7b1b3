"""The documentation keeps up with the code: every setting, catalog key and error code is documented."""

from __future__ import annotations

from pathlib import Path

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
from schema.http_sources import GraphQLSource, RestSource
from schema.sources import MySQLSource, PostgresSource, SqliteSource

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
