"""A gateway in a process of its own, whose resident memory a test can read: no other test shares it.

    python -m tests.support.memory_probe CATALOG QUERY [QUERY...]

Starts a gateway over ``CATALOG`` (authentication off), runs each query in turn and prints one JSON line
per query: the error codes of its answer and the process's peak resident memory (``ru_maxrss``, KiB)
before and after it. The first queries serve as warm-up; the growth of the peak during a later one is
what that request cost at its worst moment.
"""

from __future__ import annotations

import asyncio
import json
import resource
import sys
from pathlib import Path

from gateway.execution.guarded_adapters import GuardedAdapters
from gateway.principal import ANONYMOUS
from gateway.service import Gateway, GraphQLRequest
from gateway.settings import Settings
from schema.catalog import load_catalog


def peak_kib() -> int:
    """The process's peak resident memory so far (Linux: KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


async def main(catalog_path: str, queries: list[str]) -> None:
    catalog = load_catalog(Path(catalog_path))
    settings = Settings.model_validate({"catalog": catalog_path, "auth": {"enabled": False}})
    gateway = Gateway(catalog, settings, GuardedAdapters(catalog))
    await gateway.start()
    try:
        for query in queries:
            before = peak_kib()
            response = await gateway.execute(GraphQLRequest(query, None, None), ANONYMOUS)
            after = peak_kib()
            codes = [error.get("extensions", {}).get("code") for error in response.errors]
            print(json.dumps({"codes": codes, "peak_kib_before": before, "peak_kib_after": after}), flush=True)
    finally:
        await gateway.stop()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2:]))
