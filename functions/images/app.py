"""Image generation behind a buffered function URL: FastAPI under Mangum, only the images router."""

from aigateway.api import images
from aigateway.api.app import build_app
from mangum import Mangum

app = build_app(images.router)
handler = Mangum(app, lifespan="auto")
