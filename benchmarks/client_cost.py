"""What the SDK's bulk creator costs on the client, next to a plain aiohttp loop.

Both sides send the same creates, at the same concurrency, to the same fast local
server, which runs in its own process so that the client's CPU time is its own; on
Linux with two CPUs or more, the client and the server are kept on CPUs of their
own. Many short rounds alternate between the two sides, and each round compares its
two sides, run back to back, so that a change in the machine's load touches both
alike. A figure is the median of the rounds' ratios: on a small shared machine one
round in several is disturbed by a neighbour, which a median leaves out and a sum or
a mean would not.

The rounds are spread over several fresh client processes, run one after another.
The same code runs a few percent faster or slower in one process than in the next,
for as long as that process lives: where its code and objects land in memory
decides how well the CPU's caches and branch predictor serve it, and the two sides
are not served alike. One process is one draw of that luck; pooling the rounds of a
few draws measures the code rather than the draw (as pyperf does, for the same
reason).

* cpu_ratio: CPU seconds per record of the bulk creator (client, rate limits off,
  every outcome consumed) over those of the plain loop. Target: at most 1.3.
* throughput_ratio: records per second of the bulk creator over the plain loop.
  Target: at least 0.85.

Usage: ``python benchmarks/client_cost.py [--quick] [--records N] [--rounds R]
[--processes P]``
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import functools
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable

import aiohttp
import anyio
from _fast_server import PATH, fast_server

from nexudus_async._auth import BasicAuth
from nexudus_async._bulk import bulk_create
from nexudus_async._client import NexudusClient
from nexudus_async._models import ImportFileCreate
from nexudus_async._outcomes import OutcomeKind

CONCURRENCY = 16
AUTH = BasicAuth("admin@example.com", "password")


async def plain_loop(session: aiohttp.ClientSession, url: str, count: int) -> int:
    """The hand-written baseline: POST, read the envelope, keep the Id."""
    header = {
        "Authorization": "Basic " + base64.b64encode(b"admin@example.com:x").decode(),
        "Content-Type": "application/json",
        "Accept": "application/json",
    }
    records = iter({"BusinessId": 1, "Name": f"plain-{n:07d}"} for n in range(count))
    created = 0

    async def worker(session: aiohttp.ClientSession) -> None:
        nonlocal created
        for record in records:
            async with session.post(
                url + PATH, data=json.dumps(record).encode(), headers=header
            ) as response:
                data = await response.json()
                ok = response.status == 200 and data["WasSuccessful"]
                if ok and isinstance(data["Value"]["Id"], int):
                    created += 1

    async with anyio.create_task_group() as tg:
        for _ in range(CONCURRENCY):
            tg.start_soon(worker, session)
    return created


async def bulk_creator(client: NexudusClient, count: int) -> int:
    """The SDK: a bulk job over the client, every outcome consumed."""
    records = (ImportFileCreate(1, f"bulk-{n:07d}") for n in range(count))
    created = 0
    async with bulk_create(client, records, concurrency=CONCURRENCY) as job:
        async for outcome in job:
            if outcome.kind is OutcomeKind.CREATED:
                created += 1
    return created


#: One side of the comparison: sends this many records, returns how many were created.
Side = Callable[[int], Awaitable[int]]


@contextlib.asynccontextmanager
async def open_sides(url: str) -> AsyncIterator[dict[str, Side]]:
    """Both sides, each keeping its session (or client) and connections for every round.

    A job, like a loop written by hand, opens its connections once and then sends
    records for as long as it has some. Opening a session for each round would
    add that setup, once a round, to both sides' cost per record.
    """
    async with (
        aiohttp.ClientSession() as session,
        NexudusClient(auth=AUTH, base_url=url, rate_limits=None) as client,
    ):
        yield {
            "plain_loop": functools.partial(plain_loop, session, url),
            "bulk_creator": functools.partial(bulk_creator, client),
        }


async def measure(name: str, side: Side, count: int) -> tuple[float, float]:
    """CPU seconds and wall seconds for one round."""
    cpu, wall = time.process_time(), time.perf_counter()
    created = await side(count)
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    if created != count:
        raise RuntimeError(f"{name} created {created} of {count}")
    return cpu, wall


def separate_cpus() -> tuple[int, int] | None:
    """Name a CPU for the client processes and another for the server, if there are two.

    The two sides then never compete for one CPU, or move between CPUs in the
    middle of a round, which on a small shared machine swings a round's figures
    by a third. Only Linux can; elsewhere, and with one CPU, nothing is pinned.
    """
    if not hasattr(os, "sched_setaffinity"):
        return None
    allowed = sorted(os.sched_getaffinity(0))
    if len(allowed) < 2:
        return None
    return allowed[0], allowed[1]


async def run_rounds(url: str, records: int, rounds: int) -> list[dict[str, float]]:
    """One client process's share: a warm-up, then ``rounds`` rounds of both sides."""
    results = []
    async with open_sides(url) as sides:
        # A short warm-up of each side, not counted: imports, first connections.
        for name, side in sides.items():
            await measure(name, side, 500)

        for round_number in range(rounds):
            # Alternate which side goes first, so drift favours neither.
            order = ["plain_loop", "bulk_creator"]
            if round_number % 2:
                order.reverse()
            figures = {}
            for name in order:
                figures[name] = await measure(name, sides[name], records)
            (plain_cpu, plain_wall), (bulk_cpu, bulk_wall) = (
                figures["plain_loop"],
                figures["bulk_creator"],
            )
            results.append(
                {
                    "plain_cpu": plain_cpu / records,
                    "bulk_cpu": bulk_cpu / records,
                    "cpu": bulk_cpu / plain_cpu,
                    "throughput": plain_wall / bulk_wall,
                }
            )
    return results


def run_process(
    url: str, records: int, rounds: int, cpu: int | None
) -> list[dict[str, float]]:
    """Run ``run_rounds`` in a fresh client process; its rounds' figures."""
    command = [sys.executable, __file__, "--child", url]
    command += ["--records", str(records), "--rounds", str(rounds)]
    if cpu is not None:
        command += ["--cpu", str(cpu)]
    done = subprocess.run(command, stdout=subprocess.PIPE, text=True, check=True)
    results: list[dict[str, float]] = json.loads(done.stdout)
    return results


def spread(figures: list[float]) -> str:
    low, middle, high = statistics.quantiles(figures, n=4)
    return f"median {middle:.3f}, middle half {low:.3f}-{high:.3f}"


def main(records: int, rounds: int, processes: int) -> None:
    cpus = separate_cpus()
    if cpus is not None:
        print(f"client on CPU {cpus[0]}, server on CPU {cpus[1]}", flush=True)
    per_process = -(-rounds // processes)
    pooled: list[dict[str, float]] = []
    with fast_server(cpu=None if cpus is None else cpus[1]) as url:
        for number in range(processes):
            results = run_process(
                url, records, per_process, None if cpus is None else cpus[0]
            )
            pooled += results
            cpu = statistics.median(r["cpu"] for r in results)
            throughput = statistics.median(r["throughput"] for r in results)
            plain = statistics.median(r["plain_cpu"] for r in results) * 1e6
            bulk = statistics.median(r["bulk_cpu"] for r in results) * 1e6
            print(
                f"process {number + 1}/{processes}, {len(results)} rounds of"
                f" {records} records: plain loop {plain:.1f} us CPU/record,"
                f" bulk creator {bulk:.1f}; cpu ratio {cpu:.3f},"
                f" throughput ratio {throughput:.3f}",
                flush=True,
            )

    cpu_ratios = [r["cpu"] for r in pooled]
    throughput_ratios = [r["throughput"] for r in pooled]
    print(f"cpu ratio per round, {len(pooled)} rounds: {spread(cpu_ratios)}")
    print(
        f"throughput ratio per round, {len(pooled)} rounds: {spread(throughput_ratios)}"
    )
    print(
        f"client_cost: cpu_ratio={statistics.median(cpu_ratios):.2f} (target <= 1.3), "
        f"throughput_ratio={statistics.median(throughput_ratios):.2f} (target >= 0.85)"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a run under a minute")
    parser.add_argument("--records", type=int, help="records per round and side")
    parser.add_argument("--rounds", type=int, help="rounds per side, in all")
    parser.add_argument(
        "--processes", type=int, help="client processes to spread them over"
    )
    parser.add_argument("--child", metavar="URL", help=argparse.SUPPRESS)
    parser.add_argument("--cpu", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    count = (2_000 if args.quick else 5_000) if args.records is None else args.records
    rounds = (32 if args.quick else 40) if args.rounds is None else args.rounds
    processes = (4 if args.quick else 5) if args.processes is None else args.processes
    if args.child:
        if args.cpu is not None:
            os.sched_setaffinity(0, {args.cpu})
        print(json.dumps(asyncio.run(run_rounds(args.child, count, rounds))))
        sys.exit()
    if count < 1:
        parser.error("--records must be at least 1")
    if processes < 1:
        parser.error("--processes must be at least 1")
    if rounds < 2 * processes:
        parser.error("--rounds must be at least twice --processes: figures are medians")
    main(count, rounds, processes)
