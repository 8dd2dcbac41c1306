"""Embeddings behind a buffered function URL: FastAPI under Mangum, only the embeddings router."""

from aigateway.api import embeddings, openai_compat
from aigateway.api.app import build_app
from mangum import Mangum

app = build_app(embeddings.router, openai_compat.embeddings_router)
handler = Mangum(app, lifespan="auto")
