"""``python -m aigateway.simulator --host 127.0.0.1 --port 8090``."""

from .server import main

raise SystemExit(main())
