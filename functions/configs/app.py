"""Models, configurations, limits, batches (native and OpenAI's files and batches) and the admin web
page (/dashboard/) behind a buffered function URL.

It is the front door's default route. Batches only queue items here; the batch worker runs them.
"""

from aigateway.api import batches, cache, configs, dashboard, limits, openai_batches, openai_models
from aigateway.api.app import build_app
from aigateway.logs import configure_logging
from aigateway.settings import Settings
from mangum import Mangum

# JSON lines on Lambda, at the function's LOG_LEVEL, before anything logs.
configure_logging(Settings.from_env())

app = build_app(
    configs.router,
    limits.router,
    openai_models.router,
    batches.router,
    openai_batches.router,
    dashboard.router,
    cache.router,
)
# "off": Mangum would run the ASGI lifespan around every invocation, and build_app's shutdown
# closes the services (database connection, upstream session), so each request would reconnect.
handler = Mangum(app, lifespan="off")
