"""``python -m nexudus_async.emulator``: serve the emulator until Ctrl+C."""

from __future__ import annotations

import argparse
import asyncio
import sys

from ._options import add_emulator_arguments, config_from_args
from ._server import run_server

__all__ = ["main"]


def main(argv: list[str] | None = None) -> int:
    """Parse the options, serve, and return the exit status."""
    parser = argparse.ArgumentParser(
        prog="python -m nexudus_async.emulator",
        description="Serve a local emulator of the Nexudus REST API.",
    )
    add_emulator_arguments(parser)
    ns = parser.parse_args(argv)
    try:
        config_from_args(ns)
    except ValueError as exc:
        parser.error(str(exc))

    try:
        asyncio.run(run_server(ns))
    except KeyboardInterrupt:
        pass
    except OSError as exc:
        print(f"cannot serve on {ns.host}:{ns.port}: {exc}", file=sys.stderr)
        return 1

    return 0


if __name__ == "__main__":
    sys.exit(main())
