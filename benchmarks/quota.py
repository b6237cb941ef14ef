"""How close the bulk creator paces itself to the documented write limit.

The emulator enforces the documented limits (60 writes a minute, 5,000 a day, and
the general request limits) on a clock running ``SCALE`` times faster than real
time, and answers every request after a random 20-80 ms. The client is given the
same limits, scaled the same way. The bulk creator then creates records for a
while.

* write_rate_ratio: creates per second beyond the first window's burst, from the
  first answer to the last, over the allowed rate of 60 a scaled minute (20 a real
  second). Target: at least 0.95.
* throttled: throttle answers the emulator gave. Target: 0.

Usage: ``python benchmarks/quota.py [--quick] [--seconds S]``
"""

from __future__ import annotations

import argparse
import asyncio
import time

from nexudus_async._auth import BasicAuth
from nexudus_async._bulk import bulk_create
from nexudus_async._client import NexudusClient
from nexudus_async._limiter import RateLimits, Window
from nexudus_async._models import ImportFileCreate
from nexudus_async._outcomes import OutcomeKind
from nexudus_async.emulator import Emulator, EmulatorConfig, Faults, Limits

#: Emulated seconds per real second: a throttle "minute" lasts three real seconds,
#: long beside the 20-80 ms a request takes.
SCALE = 20.0
#: Real seconds the client adds to each window, for the time between its sending a
#: request and the emulator counting it.
MARGIN = 0.05
WRITES_PER_MINUTE = 60
CONCURRENCY = 16
#: Every request waits 20, 25, ... 80 ms, picked at random.
LATENCIES = tuple(f"delay:{ms / 1000:.3f}" for ms in range(20, 81, 5))


def scaled_limits() -> RateLimits:
    """The documented limits, with every window shortened by ``SCALE``.

    One request per 100 ms is left out: scaled, it is a 5 ms window, shorter than
    the emulator's tolerance, so the emulator does not enforce it either (and the
    margin, added to every window, would turn it into a much slower pace).
    """
    minute, hour, day = 60.0 / SCALE, 3600.0 / SCALE, 86400.0 / SCALE
    return RateLimits(
        (
            Window(WRITES_PER_MINUTE, minute, writes_only=True),
            Window(5000, day, writes_only=True),
            Window(120, minute),
            Window(5000, hour),
        ),
        margin=MARGIN,
        max_wait=None,
    )


async def main(seconds: float) -> None:
    allowed = WRITES_PER_MINUTE * SCALE / 60.0
    # Whole windows' worth: a sliding window lets writes go in bursts of one
    # window, and a last burst cut short would understate the pace.
    windows = max(2, round(seconds * allowed / WRITES_PER_MINUTE))
    count = windows * WRITES_PER_MINUTE
    config = EmulatorConfig(
        limits=Limits.documented(),
        time_scale=SCALE,
        faults=Faults(rate=1.0, kinds=LATENCIES, scope="all", seed=1),
    )
    finished: list[float] = []
    records = (ImportFileCreate(1, f"quota-{n:06d}") for n in range(count))

    # The emulator runs on a thread of its own, so that the client's event loop
    # does not delay when requests are counted.
    with Emulator(config) as emulator:
        async with (
            NexudusClient(
                auth=BasicAuth("admin@example.com", "password"),
                base_url=emulator.base_url,
                rate_limits=scaled_limits(),
            ) as client,
            bulk_create(client, records, concurrency=CONCURRENCY) as job,
        ):
            async for outcome in job:
                if outcome.kind is not OutcomeKind.CREATED:
                    raise RuntimeError(f"unexpected outcome: {outcome}")
                finished.append(time.perf_counter())
        throttled = emulator.stats.throttled
        creates = emulator.stats.creates

    # In any span of T seconds the limit allows T times the rate, plus the one
    # window's worth that may go at once at the start. So the writes beyond that
    # first window, over the time from the first answer to the last, is the rate
    # to compare with the allowed one.
    span = finished[-1] - finished[0]
    achieved = (len(finished) - WRITES_PER_MINUTE) / span
    print(
        f"{creates} creates in {span:.1f}s: {achieved:.2f}/s after the first window,"
        f" allowed {allowed:.0f}/s"
    )
    print(
        f"quota: write_rate_ratio={achieved / allowed:.3f} (target >= 0.95), "
        f"throttled={throttled} (target 0)"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a run under a minute")
    parser.add_argument("--seconds", type=float, help="length of the run")
    args = parser.parse_args()
    seconds = args.seconds or (25.0 if args.quick else 90.0)
    asyncio.run(main(seconds))
