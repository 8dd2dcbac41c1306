"""Models, configurations and limits behind a buffered function URL (the front door's default route)."""

from aigateway.api import configs, limits, openai_compat
from aigateway.api.app import build_app
from mangum import Mangum

app = build_app(configs.router, limits.router, openai_compat.models_router)
handler = Mangum(app, lifespan="auto")
