"""Instructions per record of each side of `client_cost.py`, counted by valgrind.

A diagnostic, not one of the benchmarks `make bench` runs. On a machine shared with
other work, CPU time swings by a third from one round to the next; the number of
instructions a side executes per record hardly moves, so it shows what a change to
the client or the bulk creator costs or saves, to within 1 or 2%.

Each side runs twice under ``valgrind --tool=callgrind`` (which counts the user-space
instructions of this process only; the fast server runs natively in its own
process): once with a warm-up alone and once with the warm-up and ``--records``
more. The difference, divided by the records, is the figure. A side takes about a
minute for 1,000 records; valgrind must be installed.

* ``plain``: the hand-written aiohttp loop;
* ``direct``: ``client.import_files.create`` called by 16 tasks, no bulk creator;
* ``bulk``: ``bulk_create`` over the client, every outcome consumed.

Usage: ``python benchmarks/instructions.py [plain direct bulk] [--records N]``
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import anyio
from _fast_server import fast_server
from client_cost import AUTH, CONCURRENCY, open_sides

from nexudus_async._client import NexudusClient
from nexudus_async._models import ImportFileCreate

WARM_UP = 300


async def direct(client: NexudusClient, count: int) -> int:
    """The client alone: 16 tasks calling create, no bulk creator."""
    records = iter(ImportFileCreate(1, f"direct-{n:07d}") for n in range(count))
    created = 0

    async def worker() -> None:
        nonlocal created
        for record in records:
            if (await client.import_files.create(record)).id is not None:
                created += 1

    async with anyio.create_task_group() as tg:
        for _ in range(CONCURRENCY):
            tg.start_soon(worker)
    return created


#: The sides by their short names here, and by their names in `client_cost.py`.
SIDES = {"plain": "plain_loop", "direct": "direct", "bulk": "bulk_creator"}


async def run_side(side: str, count: int) -> None:
    """What runs under valgrind: the warm-up, then ``count`` records."""
    with fast_server() as url:
        async with (
            open_sides(url) as sides,
            NexudusClient(auth=AUTH, base_url=url, rate_limits=None) as client,
        ):
            sides["direct"] = functools.partial(direct, client)
            run = sides[SIDES[side]]
            await run(WARM_UP)
            if count:
                await run(count)


def count_instructions(side: str, count: int, folder: Path) -> int:
    out = folder / f"callgrind.{side}.{count}"
    subprocess.run(
        [
            "valgrind",
            "--tool=callgrind",
            f"--callgrind-out-file={out}",
            sys.executable,
            __file__,
            "--child",
            side,
            "--records",
            str(count),
        ],
        check=True,
        capture_output=True,
    )
    summary = re.search(r"^(?:summary|totals): (\d+)", out.read_text(), re.MULTILINE)
    if summary is None:
        raise RuntimeError(f"no instruction count in {out}")
    return int(summary.group(1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sides", nargs="*", help="plain, direct, bulk (default: all)")
    parser.add_argument("--records", type=int, default=1000)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        asyncio.run(run_side(args.child, args.records))
        return
    unknown = set(args.sides) - set(SIDES)
    if unknown:
        parser.error(f"unknown side(s): {', '.join(sorted(unknown))}")
    if shutil.which("valgrind") is None:
        sys.exit("valgrind is not installed: this diagnostic needs it")

    figures = {}
    with tempfile.TemporaryDirectory() as folder:
        for side in args.sides or SIDES:
            base = count_instructions(side, 0, Path(folder))
            total = count_instructions(side, args.records, Path(folder))
            figures[side] = (total - base) / args.records
            print(f"{side:>6}: {figures[side]:,.0f} instructions/record", flush=True)
    if "plain" in figures:
        ratios = ", ".join(
            f"{side}={figure / figures['plain']:.3f}"
            for side, figure in figures.items()
            if side != "plain"
        )
        print(f"instructions over the plain loop: {ratios}")


if __name__ == "__main__":
    main()
