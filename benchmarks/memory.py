"""Whether the bulk creator's memory stays flat however long the input.

Two JSONL files, of 200,000 and 20,000 records, are each streamed through the file
reader into the bulk creator, in a fresh process per file, against a fast local
server (limits off) running in a process of its own. Each process reports its peak
resident set size.

* peak_rss_ratio: peak RSS with 200,000 records over peak RSS with 20,000. Target:
  at most 1.15. (With ``--quick``: 60,000 over 6,000, the same tenfold step.)

Usage: ``python benchmarks/memory.py [--quick]``
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _fast_server import fast_server

CONCURRENCY = 16


def write_input(path: Path, count: int) -> None:
    """Write ``count`` valid records, one JSON object per line."""
    with path.open("w", encoding="utf-8") as out:
        for n in range(count):
            record = {"BusinessId": 1 + n % 3, "Name": f"import file {n:07d}"}
            out.write(json.dumps(record) + "\n")


async def stream(path: str, url: str) -> int:
    """Create every record of the file; return how many were created."""
    from nexudus_async._auth import BasicAuth
    from nexudus_async._bulk import bulk_create
    from nexudus_async._client import NexudusClient
    from nexudus_async._io import open_records
    from nexudus_async._outcomes import OutcomeKind

    created = 0
    with open_records(path) as reader:
        async with (
            NexudusClient(
                auth=BasicAuth("admin@example.com", "password"),
                base_url=url,
                rate_limits=None,
            ) as client,
            bulk_create(client, reader, concurrency=CONCURRENCY) as job,
        ):
            async for outcome in job:
                if outcome.kind is OutcomeKind.CREATED:
                    created += 1
    return created


def child(path: str, url: str) -> None:
    """Run one file through the bulk creator and print the peak RSS in KiB."""
    started = time.perf_counter()
    created = asyncio.run(stream(path, url))
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    elapsed = time.perf_counter() - started
    print(json.dumps({"created": created, "peak_kib": peak, "seconds": elapsed}))


def measure(path: Path, url: str) -> dict[str, float]:
    result = subprocess.run(
        [sys.executable, __file__, "--child", str(path), url],
        check=True,
        capture_output=True,
        text=True,
    )
    figures: dict[str, float] = json.loads(result.stdout.strip().splitlines()[-1])
    return figures


def main(large: int) -> None:
    small = large // 10
    with tempfile.TemporaryDirectory() as folder, fast_server() as url:
        peaks = {}
        for count in (small, large):
            path = Path(folder) / f"records-{count}.jsonl"
            write_input(path, count)
            figures = measure(path, url)
            if figures["created"] != count:
                raise RuntimeError(f"created {figures['created']} of {count}")
            peaks[count] = figures["peak_kib"]
            print(
                f"{count:>7} records: peak RSS {figures['peak_kib'] / 1024:6.1f} MiB,"
                f" {count / figures['seconds']:6.0f} records/s",
                flush=True,
            )
    ratio = peaks[large] / peaks[small]
    print(f"memory: peak_rss_ratio={ratio:.3f} (target <= 1.15)")


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--child":
        child(sys.argv[2], sys.argv[3])
        sys.exit()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--quick", action="store_true", help="60,000 over 6,000, under a minute"
    )
    parser.add_argument("--records", type=int, help="the larger input's size")
    args = parser.parse_args()
    main(args.records or (60_000 if args.quick else 200_000))
