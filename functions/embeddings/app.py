"""Embeddings behind a buffered function URL: FastAPI under Mangum, only the embeddings router."""

from aigateway.api import embeddings, openai_embeddings
from aigateway.api.app import build_app
from aigateway.logs import configure_logging
from aigateway.settings import Settings
from mangum import Mangum

# JSON lines on Lambda, at the function's LOG_LEVEL, before anything logs.
configure_logging(Settings.from_env())

app = build_app(embeddings.router, openai_embeddings.router)
# "off": Mangum would run the ASGI lifespan around every invocation, and build_app's shutdown
# closes the services (database connection, upstream session), so each request would reconnect.
handler = Mangum(app, lifespan="off")
