"""The register of agreements and GraphiQL with a purpose, in Debian's headless Chromium on a closed network."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from gateway.graphiql_assets import fetch_assets
from schema.catalog import Catalog
from tests.support.governance import GovernedDeployment, governed_deployment
from tests.test_graphiql_browser import ASSET_CACHE, _browser_page, _editor


@pytest.fixture
async def deployment(sqlite_clinic: Catalog, tmp_path: Path) -> AsyncIterator[GovernedDeployment]:
    try:  # from the npm registry once; the browser itself never leaves loopback
        fetch_assets(ASSET_CACHE)
    except httpx.HTTPError as error:
        pytest.fail(f"GraphiQL's assets cannot be fetched from the npm registry into {ASSET_CACHE} ({error})")
    async with governed_deployment(tmp_path, sqlite_clinic, graphiql={"assets_dir": str(ASSET_CACHE)}) as deployed:
        yield deployed


async def test_the_register_page_lists_parties_purposes_basis_and_data_items(deployment: GovernedDeployment) -> None:
    async with _browser_page() as (page, problems):
        response = await page.goto(f"{deployment.base_url}/agreements")
        assert response is not None and response.status == 200
        care = page.locator("article#ISA-CARE")
        await care.wait_for()
        title = await care.locator("h2").inner_text()
        state = await care.locator(".state").inner_text()
        text = await care.inner_text()
        rows = await care.locator("tbody tr").all_inner_texts()
        headline = await page.locator("h1").inner_text()
    assert headline == "Register of information sharing agreements"
    assert (title, state) == ("Agreement ISA-CARE", "in force")
    assert "Shared with\nCOUNCIL-9" in text and "Purposes\ndirect_care" in text
    assert "Article 6: 6(1)(e) public task" in text and "Care Act 2014 s6" in text
    assert "Keep in the care record for 8 years." in text
    assert rows == [
        "clinic.people\tperson_id, given_name, family_name, nhs_number, born\tnhs_number: show_last(4), born: "
        "year_only\tactive = TRUE",
        "clinic.visits\tvisit_id, person_id, at, kind\t\t",
    ]
    assert problems == []  # nothing the page's Content-Security-Policy had to block


async def test_graphiql_sends_the_purpose_from_its_headers_tab(deployment: GovernedDeployment) -> None:
    token = await deployment.token("council-care")
    headers = '{"Authorization": "Bearer ' + token + '", "Fedgate-Purpose": "direct_care"}'
    async with _browser_page() as (page, _):
        await page.goto(f"{deployment.base_url}/graphql")
        await page.wait_for_selector(".graphiql-query-editor .CodeMirror", timeout=20_000)
        await page.get_by_role("button", name="Headers").click()
        editor = ".graphiql-editor-tool .graphiql-editor:not(.hidden)"
        await page.wait_for_selector(f"{editor} .CodeMirror")
        await page.click(f"{editor} .CodeMirror")
        await page.keyboard.insert_text(headers)
        await _editor(page, ".graphiql-query-editor", '{ clinic { person(personId: "p01") { givenName } } }')
        await page.click(".graphiql-execute-button")
        shown = "document.querySelector('.graphiql-response .CodeMirror').CodeMirror.getValue()"
        await page.wait_for_function(f"() => {shown}.includes('givenName')", timeout=20_000)
        result = await page.eval_on_selector(
            ".graphiql-response .CodeMirror", "element => JSON.parse(element.CodeMirror.getValue())"
        )
    assert result["data"] == {"clinic": {"person": {"givenName": "alice"}}}
    assert result["extensions"]["purpose"] == {"name": "direct_care", "source": "header"}
    assert [agreement["id"] for agreement in result["extensions"]["agreements"]] == ["ISA-CARE"]
