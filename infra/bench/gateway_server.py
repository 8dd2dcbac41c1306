"""Serve the gateway headless for the benchmark: the local app, no banner, no simulator thread.

`aigateway serve` would also start an embedded PostgreSQL and (without a key) an in-process
simulator on the same core; the benchmark wants those elsewhere, so this launcher only builds
the app from the environment the runner sets (DATABASE_URL, JWT_SECRET, ACCESS_API_KEY,
OPENROUTER_BASE_URL, OPENROUTER_API_KEY, UPSTREAM_FORWARD_HEADER_PREFIX, AIGATEWAY_HOME) and
serves it with uvicorn's fast paths: uvloop, httptools, no access log, one worker.

Usage: taskset -c 1 python infra/bench/gateway_server.py --port 7131
"""

from __future__ import annotations

import argparse
import logging
from typing import Any


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()

    from aigateway.api.local import local_app
    from aigateway.services import Services
    from aigateway.settings import Settings

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s %(message)s")
    settings = Settings.from_env()
    serve(local_app(Services.from_settings(settings)), args.host, args.port)


def serve(app: Any, host: str, port: int) -> None:
    """uvicorn's fast paths, as every process under test is served (floor_server.py too)."""
    import uvicorn

    uvicorn.run(
        app, host=host, port=port, loop="uvloop", http="httptools", access_log=False, log_level="warning", lifespan="on"
    )


if __name__ == "__main__":
    main()
