"""``make bench``: every benchmark, one after another, each printing its own figures and ratios."""

from __future__ import annotations

import asyncio

from bench import fanout, memory, people


async def main() -> None:
    for benchmark in (fanout, people, memory):
        await benchmark.main([])
        print()


if __name__ == "__main__":
    asyncio.run(main())
