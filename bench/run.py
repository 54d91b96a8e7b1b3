"""``make bench``: every benchmark, one after another, each printing its own figures and ratios.

``bench.throughput`` (fedgate against PostGraphile and the ceiling, one and two workers) installs
PostGraphile and autocannon from npm into ``$BENCH_CACHE`` on first use.
"""

from __future__ import annotations

import asyncio

from bench import fanout, hostile_clients, hostile_dependencies, memory, people, recovery, throughput


async def main() -> None:
    for benchmark in (fanout, people, memory, recovery, hostile_dependencies, hostile_clients, throughput):
        await benchmark.main([])
        print()


if __name__ == "__main__":
    asyncio.run(main())
