"""Usage, summaries and audit records behind a buffered function URL: only the usage router."""

from aigateway.api import usage
from aigateway.api.app import build_app
from mangum import Mangum

app = build_app(usage.router)
handler = Mangum(app, lifespan="auto")
