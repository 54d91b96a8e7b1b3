"""A server's process sets what start-up made aside from the garbage collector, once it has started."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from gateway import heap
from gateway.app import create_app
from schema.catalog import Catalog
from tests.conftest import make_settings
from tests.support.servers import serving


@pytest.fixture
def collector() -> Iterator[None]:
    """The collector as this test process had it, restored afterwards."""
    thresholds = gc.get_threshold()
    gc.unfreeze()
    yield
    gc.unfreeze()
    gc.set_threshold(*thresholds)


@pytest.mark.usefixtures("collector")
async def test_a_served_application_freezes_what_start_up_made_and_collects_young_objects_less_often(
    sqlite_clinic: Catalog,
) -> None:
    async with serving(create_app(make_settings(), sqlite_clinic, None, settle_heap=True)):
        assert gc.get_freeze_count() > 10_000  # the catalog, the schema, the sources: out of the collector's sight
        assert gc.get_threshold()[0] == heap.YOUNG_THRESHOLD == 10_000


@pytest.mark.usefixtures("collector")
async def test_an_application_built_by_a_test_leaves_the_collector_alone(sqlite_clinic: Catalog) -> None:
    before = gc.get_threshold()
    async with serving(create_app(make_settings(), sqlite_clinic, None)):
        assert gc.get_freeze_count() == 0
        assert gc.get_threshold() == before
