"""Memory per request against the size of the departments' tables: a fixed page must cost the same
whether the departments hold 5,000 people or 80,000.

The demo federation is generated at several sizes (SQLite departments). For each, after warm-up, one
request's peak Python allocation is measured with :mod:`tracemalloc` (everything the gateway holds:
rows, objects, the response), for two queries:

* ``page``: 100 people with their hospital spells and benefit claims, no condition;
* ``filtered``: the same page of people with an emergency admission: a semi-join, whose key set (the
  people matching, before the page is cut) grows with the number who match.

    python -m bench.memory [--sizes 5000,20000,80000]
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import tracemalloc
from collections.abc import Sequence
from pathlib import Path

from bench.databases import federation
from bench.support import ask, started
from demo.generate import generate

PAGE = """{ people(limit: 100) {
  nhsNumber givenName familyName
  hospitalSpells(limit: 5) { admittedAt admissionMethod }
  benefitClaims { benefitType weeklyAmount }
} }"""
FILTERED = """{ people(where: {hospitalSpells: {admissionMethod: {eq: "emergency"}}}, limit: 100) {
  nhsNumber givenName familyName
  hospitalSpells(limit: 5) { admittedAt admissionMethod }
  benefitClaims { benefitType weeklyAmount }
} }"""
QUERIES = {"page": PAGE, "filtered": FILTERED}


async def _peaks(size: int, directory: Path) -> dict[str, float]:
    """Peak KiB allocated during one request of each query, on a federation of ``size`` people."""
    peaks: dict[str, float] = {}
    async with federation("sqlite", generate(people=size), directory / str(size)) as setup:
        gateway = await started(setup.catalog)
        try:
            for name, query in QUERIES.items():
                for _ in range(3):  # warm-up: plans, prepared statements, pools
                    await ask(gateway, query)
                tracemalloc.start()
                try:
                    response = await ask(gateway, query)
                    _, peak = tracemalloc.get_traced_memory()
                finally:
                    tracemalloc.stop()
                assert response.data is not None and len(response.data["people"]) == 100
                peaks[name] = peak / 1024
        finally:
            await gateway.stop()
    return peaks


async def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.memory", description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="5000,20000,80000", help="populations to generate, comma-separated")
    args = parser.parse_args(argv)
    sizes = [int(size) for size in args.sizes.split(",")]
    results: dict[int, dict[str, float]] = {}
    with tempfile.TemporaryDirectory(prefix="fedgate-bench-") as directory:
        for size in sizes:
            results[size] = await _peaks(size, Path(directory))
    print("Peak memory of one request (tracemalloc, KiB) against the number of people in the departments")
    print(f"  {'people':>8}  " + "  ".join(f"{name:>10}" for name in QUERIES))
    for size in sizes:
        print(f"  {size:>8}  " + "  ".join(f"{results[size][name]:>10.0f}" for name in QUERIES))
    smallest, largest = sizes[0], sizes[-1]
    for name in QUERIES:
        growth = results[largest][name] / results[smallest][name]
        print(f"  {name}: {growth:.2f}x the memory for {largest / smallest:.0f}x the people")


if __name__ == "__main__":
    asyncio.run(main())
