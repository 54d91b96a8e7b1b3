"""GraphiQL in a real browser (Debian's headless Chromium, driven by Playwright), with assets served locally.

The page must load every asset past its Subresource Integrity check and Content-Security-Policy, and a
query run with a bearer token pasted into GraphiQL's Headers tab must come back with the data that
token may see.
"""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import yaml
from playwright.async_api import Page, async_playwright

from gateway.app import create_app
from gateway.auth.dev_issuer import create_dev_issuer_app
from gateway.graphiql_assets import fetch_assets
from gateway.settings import Settings, load_settings
from schema.catalog import Catalog
from tests.servers import free_port, serving
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
]


def _settings_with_local_assets(directory: Path, catalog: Catalog, issuer_port: int) -> Settings:
    write_settings(directory, catalog, issuer_port)
    data = yaml.safe_load((directory / "fedgate.yaml").read_text())
    data["graphiql"] = {"assets_url": "/graphiql-assets", "assets_dir": str(ASSET_CACHE)}
    (directory / "fedgate.yaml").write_text(yaml.safe_dump(data))
    return load_settings(directory / "fedgate.yaml")


@pytest.fixture
async def deployment(sqlite_clinic: Catalog, tmp_path: Path) -> AsyncIterator[Deployment]:
    if shutil.which(CHROMIUM) is None:
        pytest.fail("Chromium is not installed: apt-get install -y chromium (the CI script does this)")
    fetch_assets(ASSET_CACHE)
    issuer_port = free_port()
    settings = _settings_with_local_assets(tmp_path, sqlite_clinic, issuer_port)
    assert settings.dev_issuer is not None
    async with serving(create_dev_issuer_app(settings.dev_issuer), issuer_port), serving(create_app(settings)) as url:
        yield Deployment(settings, url)


async def _editor(page: Page, selector: str, value: str) -> None:
    await page.eval_on_selector(
        f"{selector} .CodeMirror", "(element, text) => element.CodeMirror.setValue(text)", value
    )


async def test_graphiql_runs_a_query_with_a_token_in_its_headers(deployment: Deployment) -> None:
    token = await deployment.token("reception-app")
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = await browser.new_page()
            problems: list[str] = []
            page.on("console", lambda message: problems.append(message.text) if message.type == "error" else None)
            page.on("pageerror", lambda error: problems.append(str(error)))
            await page.goto(deployment.url)
            await page.wait_for_selector(".graphiql-query-editor .CodeMirror", timeout=20_000)
            await page.get_by_role("button", name="Headers").click()
            headers_editor = ".graphiql-editor-tool .graphiql-editor:not(.hidden)"
            await page.wait_for_selector(f"{headers_editor} .CodeMirror")
            await _editor(page, headers_editor, '{"Authorization": "Bearer ' + token + '"}')
            await _editor(page, ".graphiql-query-editor", '{ clinic { person(personId: "p03") { givenName } } }')
            await page.click(".graphiql-execute-button")
            response_text = "document.querySelector('.graphiql-response .CodeMirror').CodeMirror.getValue()"
            await page.wait_for_function(f"() => {response_text}.includes('givenName')", timeout=20_000)
            result = await page.eval_on_selector(
                ".graphiql-response .CodeMirror", "element => JSON.parse(element.CodeMirror.getValue())"
            )
            stored = await page.evaluate("() => JSON.stringify(window.localStorage)")
        finally:
            await browser.close()
    assert result["data"] == {"clinic": {"person": {"givenName": "Élodie"}}}
    assert token not in stored  # headers (the token) are not persisted in the browser
    assert not [problem for problem in problems if "Content Security Policy" in problem or "integrity" in problem]
