"""Run the simulator: ``serve(host, port)`` and the ``python -m aigateway.simulator`` CLI.

uvicorn's ``auto`` loop and HTTP choices pick uvloop and httptools when installed
(``uvicorn[standard]``), which is what benchmarks want; access logs are off because they cost more
than the simulated work itself.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

__all__ = ["main", "serve"]

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8090


def serve(host: str = DEFAULT_HOST, port: int = DEFAULT_PORT) -> None:
    """Serve a fresh simulator app with uvicorn until interrupted."""
    import uvicorn

    from .app import create_app

    uvicorn.run(create_app(), host=host, port=port, log_level="warning", access_log=False)


def main(argv: Sequence[str] | None = None) -> int:
    """CLI entry point: ``python -m aigateway.simulator [--host H] [--port P]``."""
    parser = argparse.ArgumentParser(
        prog="python -m aigateway.simulator",
        description="Serve an OpenRouter simulator (base URL http://HOST:PORT/api/v1).",
    )
    parser.add_argument("--host", default=DEFAULT_HOST, help=f"interface to bind (default {DEFAULT_HOST})")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"port (default {DEFAULT_PORT})")
    args = parser.parse_args(argv)
    print(f"OpenRouter simulator on http://{args.host}:{args.port}/api/v1", file=sys.stderr, flush=True)
    serve(args.host, args.port)
    return 0
