from pathlib import Path
from tests.servers import serving
from tests.http_clinic import clinic_rest_api, http_clinic_catalog
from tests.conftest import started_gateway, run
from adapters.pushdown import pushable_conditions
import adapters.http_source as hs

async def test_smoke(tmp_path: Path) -> None:
    api = clinic_rest_api()
    orig = hs.HttpAdapter.prepare
    def prepare(self, query):
        p = orig(self, query)
        print("SQL", query.select.sql(), pushable_conditions(query, p.table.name), p.negotiated, p.display_sql)
        return p
    hs.HttpAdapter.prepare = prepare
    async with serving(api.app) as url:
        catalog = http_clinic_catalog(tmp_path, "rest", {"clinic": f"{url}/clinic", "council": f"{url}/council"})
        gw = await started_gateway(catalog)
        r = await run(gw, '{ clinic { people(where: {givenName: {eq: "alice"}}) { personId givenName visits { visitId kind } } } }')
        print(r.data, r.errors)
        await gw.stop()
