"""fedgate at several git revisions, side by side in one run: did a change cost throughput?

Each revision is checked out into a temporary worktree and served with this checkout's interpreter (its
dependencies must cover the revision's: true going back to November 2026), from that worktree's own code
(``PYTHONPATH``; ``PYTHONSAFEPATH`` keeps this checkout off the path). Each serves the settings its own
``bench.health_federation.write_files`` writes (the audit mode ``--audit`` where it knows audit modes), all
with one token from one development issuer, and autocannon drives queries 1 and 2 against each in
interleaved rounds, as ``bench.throughput`` does. The first revision is the reference of the ratios.

    python -m bench.revisions bfea7ad 411423b main [--audit off] [--duration 5] [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path

import httpx

from bench.health_federation import AUDIT_MODES, ensure_health_data
from bench.support import REPO, free_port, running
from bench.throughput import AUTOCANNON, compare, dev_issuer, fedgate_target, median_load, mint_token

#: Run in a revision's worktree: write its benchmark settings, print the file to serve.
_WRITE = (
    "import sys; from pathlib import Path; from bench.health_federation import write_files; "
    "files = write_files(Path(sys.argv[1]), int(sys.argv[2])); "
    "print(files[sys.argv[3]] if isinstance(files, dict) else files)"
)


@contextlib.contextmanager
def worktree(revision: str) -> Iterator[Path]:
    """``revision`` checked out in a temporary worktree, removed afterwards."""
    with tempfile.TemporaryDirectory(prefix="fedgate-revision-") as scratch:
        tree = Path(scratch) / "tree"
        subprocess.run(["git", "-C", str(REPO), "worktree", "add", "-q", "--detach", str(tree), revision], check=True)
        try:
            yield tree
        finally:
            subprocess.run(["git", "-C", str(REPO), "worktree", "remove", "--force", str(tree)], check=False)


async def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("revisions", nargs="+", help="git revisions; the first is the reference")
    parser.add_argument("--audit", choices=AUDIT_MODES, default="off", help="the audit mode, where a revision has one")
    parser.add_argument("--duration", type=int, default=5, help="seconds of load per run")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--connections", type=int, default=16)
    args = parser.parse_args(argv)
    if not AUTOCANNON.exists():
        raise SystemExit(f"autocannon is missing at {AUTOCANNON}: run python -m bench.throughput once to install it")
    await ensure_health_data()
    with tempfile.TemporaryDirectory(prefix="fedgate-revisions-") as scratch, contextlib.ExitStack() as stack:
        directory = Path(scratch)
        async with dev_issuer(directory) as (issuer, port), httpx.AsyncClient(timeout=30) as client:
            headers = {"authorization": f"Bearer {await mint_token(client, issuer)}"}
            targets = []
            for number, revision in enumerate(args.revisions):
                tree = stack.enter_context(worktree(revision))
                files = directory / f"revision-{number}"
                written = subprocess.run(
                    [sys.executable, "-c", _WRITE, str(files), str(port), args.audit],
                    cwd=tree, check=True, capture_output=True, text=True,
                )  # fmt: skip
                served = free_port()
                command = [sys.executable, "-m", "gateway", "serve", "--config", written.stdout.strip()]
                environment = {"PYTHONPATH": str(tree), "PYTHONSAFEPATH": "1"}
                stack.enter_context(running([*command, "--port", str(served)], served, env=environment))
                targets.append(fedgate_target(revision, f"http://127.0.0.1:{served}/graphql", headers))
            results = await compare(targets, args)
    for query, figures in results.items():
        medians = {name: median_load(runs) for name, runs in figures.items()}
        reference = medians[args.revisions[0]]
        print(f"\nquery '{query}' (medians of {args.rounds} rounds, audit {args.audit})")
        for name, load in medians.items():
            print(f"  {name:<14} {load}   {load.requests_per_second / reference.requests_per_second:5.2f}x")


if __name__ == "__main__":
    asyncio.run(main())
