"""GraphiQL in a real browser (Debian's headless Chromium, driven by Playwright), on a closed network.

The browser can resolve no host but loopback (``--host-resolver-rules``), as on a government network
without internet; the page's assets come from ``graphiql.assets_dir`` alone. The page must load every asset
past its Subresource Integrity check and Content-Security-Policy; a query run with a bearer token pasted
into GraphiQL's Headers tab must come back with the data that token may see; the Docs panel must show the
caller's types and fields (GraphiQL's own introspection query passes the limits); autocompletion must offer
the caller's fields; and with the assets missing the page must say so and how to fix it.

With ``FEDGATE_SCREENSHOTS=DIR`` set, the Docs panel's screenshot is saved there too (``docs/`` holds one).
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from playwright.async_api import Page, async_playwright

from gateway.auth.dev_issuer import create_dev_issuer_app
from gateway.graphiql_assets import fetch_assets
from gateway.settings import Settings, load_settings
from schema.catalog import Catalog
from tests.support.servers import free_port, gateway_app, serving
from tests.test_auth_http import Deployment, write_settings

CHROMIUM = "/usr/bin/chromium"
ASSET_CACHE = Path(__file__).parent.parent / ".cache" / "graphiql-assets"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1, EXCLUDE localhost",  # no internet
]


def _settings_with_local_assets(directory: Path, catalog: Catalog, issuer_port: int, assets: Path) -> Settings:
    """The settings with ``graphiql.assets_dir`` only: the one setting a closed network needs."""
    write_settings(directory, catalog, issuer_port)
    data = yaml.safe_load((directory / "fedgate.yaml").read_text())
    data["graphiql"] = {"assets_dir": str(assets)}
    (directory / "fedgate.yaml").write_text(yaml.safe_dump(data))
    return load_settings(directory / "fedgate.yaml")


@contextlib.asynccontextmanager
async def _deployment(catalog: Catalog, directory: Path, assets: Path) -> AsyncIterator[Deployment]:
    if shutil.which(CHROMIUM) is None:
        pytest.fail("Chromium is not installed: apt-get install -y chromium (`make test` installs it)")
    issuer_port = free_port()
    settings = _settings_with_local_assets(directory, catalog, issuer_port, assets)
    assert settings.dev_issuer is not None
    gateway = gateway_app(directory / "fedgate.yaml")
    async with serving(create_dev_issuer_app(settings.dev_issuer), issuer_port), serving(gateway) as url:
        yield Deployment(settings, url)


@pytest.fixture
async def deployment(sqlite_clinic: Catalog, tmp_path: Path) -> AsyncIterator[Deployment]:
    try:  # from the npm registry once; the browser itself never leaves loopback
        fetch_assets(ASSET_CACHE)
    except httpx.HTTPError as error:
        pytest.fail(f"GraphiQL's assets cannot be fetched from the npm registry into {ASSET_CACHE} ({error})")
    async with _deployment(sqlite_clinic, tmp_path, ASSET_CACHE) as started:
        yield started


@contextlib.asynccontextmanager
async def _browser_page() -> AsyncIterator[tuple[Page, list[str]]]:
    """A page of a fresh headless Chromium, and the console errors it logs."""
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = await browser.new_page(viewport={"width": 1280, "height": 800})
            problems: list[str] = []
            page.on("console", lambda message: problems.append(message.text) if message.type == "error" else None)
            page.on("pageerror", lambda error: problems.append(str(error)))
            yield page, problems
        finally:
            await browser.close()


async def _editor(page: Page, selector: str, value: str) -> None:
    await page.eval_on_selector(
        f"{selector} .CodeMirror", "(element, text) => element.CodeMirror.setValue(text)", value
    )


async def _sign_in(page: Page, token: str) -> None:
    """Paste the bearer token into GraphiQL's Headers tab and fetch the schema this token may see."""
    await page.wait_for_selector(".graphiql-query-editor .CodeMirror", timeout=20_000)
    await page.get_by_role("button", name="Headers").click()
    headers_editor = ".graphiql-editor-tool .graphiql-editor:not(.hidden)"
    await page.wait_for_selector(f"{headers_editor} .CodeMirror")
    await page.click(f"{headers_editor} .CodeMirror")
    await page.keyboard.insert_text('{"Authorization": "Bearer ' + token + '"}')  # pasted, as a person would
    await page.wait_for_function(
        f"() => document.querySelector('{headers_editor} .CodeMirror').CodeMirror.getValue().includes('Bearer')"
    )
    await page.get_by_role("button", name="Re-fetch GraphQL schema").click()


async def _run_query(page: Page, query: str) -> Any:
    """Put ``query`` in the editor, press Run and return the response GraphiQL shows."""
    await _editor(page, ".graphiql-query-editor", query)
    await page.click(".graphiql-execute-button")
    response_text = "document.querySelector('.graphiql-response .CodeMirror').CodeMirror.getValue()"
    await page.wait_for_function(f"() => {response_text}.includes('givenName')", timeout=20_000)
    return await page.eval_on_selector(
        ".graphiql-response .CodeMirror", "element => JSON.parse(element.CodeMirror.getValue())"
    )


async def test_graphiql_runs_a_query_with_a_token_in_its_headers(deployment: Deployment) -> None:
    token = await deployment.token("reception-app")
    async with _browser_page() as (page, problems):
        await page.goto(deployment.url)
        await _sign_in(page, token)
        result = await _run_query(page, '{ clinic { person(personId: "p03") { givenName } } }')
        stored = await page.evaluate("() => JSON.stringify(window.localStorage)")
    assert result["data"] == {"clinic": {"person": {"givenName": "Élodie"}}}
    assert token not in stored  # headers (the token) are not persisted in the browser
    assert not [problem for problem in problems if "Content Security Policy" in problem or "integrity" in problem]


async def test_the_docs_panel_shows_the_callers_types_and_fields(deployment: Deployment, tmp_path: Path) -> None:
    token = await deployment.token("reception-app")
    async with _browser_page() as (page, problems):
        await page.goto(deployment.url)
        await _sign_in(page, token)
        await _run_query(page, '{ clinic { person(personId: "p03") { personId givenName familyName } } }')
        await page.get_by_role("button", name="Show Documentation Explorer").click()
        explorer = page.locator(".graphiql-doc-explorer")
        await explorer.locator(".graphiql-doc-explorer-type-name", has_text="Query").first.click(timeout=20_000)
        await explorer.locator(".graphiql-doc-explorer-field-name", has_text="clinic").first.click()
        await explorer.locator(".graphiql-doc-explorer-type-name").first.click()  # the clinic field's type
        await explorer.locator(".graphiql-doc-explorer-field-name", has_text="person").first.click()
        await explorer.locator(".graphiql-doc-explorer-type-name").first.click()  # the person field's type
        await explorer.locator(".graphiql-doc-explorer-field-name", has_text="givenName").first.wait_for()
        fields = await explorer.locator(".graphiql-doc-explorer-field-name").all_inner_texts()
        title = await explorer.locator(".graphiql-doc-explorer-title").inner_text()
        shot = await page.screenshot()
        (tmp_path / "graphiql-docs.png").write_bytes(shot)
        if os.environ.get("FEDGATE_SCREENSHOTS"):
            (Path(os.environ["FEDGATE_SCREENSHOTS"]) / "graphiql-docs.png").write_bytes(shot)
    assert title == "ClinicPerson"
    assert {"personId", "givenName", "familyName"} <= set(fields)
    assert not {"nhsNumber", "born", "balance"} & set(fields)  # outside the reception scope: not in its schema
    assert "Error fetching schema" not in " ".join(problems)
    assert shot[:8] == b"\x89PNG\r\n\x1a\n"


async def test_autocompletion_offers_the_callers_fields(deployment: Deployment) -> None:
    token = await deployment.token("reception-app")
    async with _browser_page() as (page, _):
        await page.goto(deployment.url)
        await _sign_in(page, token)
        await page.wait_for_function(
            "() => document.querySelector('.graphiql-doc-explorer, .graphiql-sidebar') !== null"
        )
        text = '{ clinic { person(personId: "p03") {  } } }'
        await page.eval_on_selector(
            ".graphiql-query-editor .CodeMirror",
            "(element, text) => { const cm = element.CodeMirror; cm.setValue(text); "
            "cm.setCursor({line: 0, ch: text.indexOf('{  }') + 2}); cm.focus(); }",
            text,
        )
        await page.keyboard.type("giv", delay=50)
        hints = page.locator(".CodeMirror-hints .CodeMirror-hint")
        await hints.first.wait_for(timeout=10_000)
        offered = await hints.all_inner_texts()
    assert offered == ["givenName"]


async def test_missing_assets_say_so_and_how_to_fix_it(sqlite_clinic: Catalog, tmp_path: Path) -> None:
    empty = tmp_path / "no-assets"
    empty.mkdir()
    async with _deployment(sqlite_clinic, tmp_path, empty) as deployment, _browser_page() as (page, _):
        await page.goto(deployment.url)
        problem = page.locator("#fedgate-assets-problem")
        await problem.wait_for(timeout=20_000)
        text = await problem.inner_text()
    assert "GraphiQL could not start" in text
    assert "fedgate graphiql-assets" in text and "graphiql.assets_dir" in text
