"""The garbage collector, set for a long-running server process.

Everything a process makes while the application starts (the catalog, the callers' schemas, the policy,
the sources' pools, the caches' first entries) lives as long as the process, yet CPython's collector walks
it again at every full collection: some 130,000 objects, tens of milliseconds each time. Under load, with
every answer kept alive until its audit record is durable, collections came often enough to cost
20-70 µs a request (``docs/performance.md``). Once start-up is done, :func:`settle` collects what start-up
left behind, moves the rest out of the collector's sight (``gc.freeze``), and collects the youngest
generation less often (:data:`YOUNG_THRESHOLD`). A request's objects are still freed by reference counting
the moment it ends, and reference cycles are still collected, a little later.
"""

from __future__ import annotations

import gc

#: Allocations (net of deallocations) between collections of the youngest generation; CPython's default is
#: 700, which a few concurrent requests' answers reach.
YOUNG_THRESHOLD = 10_000


def settle() -> None:
    """Set start-up's objects aside from the collector, and collect young objects less often."""
    gc.collect()
    gc.freeze()
    _, middle, oldest = gc.get_threshold()
    gc.set_threshold(YOUNG_THRESHOLD, middle, oldest)
