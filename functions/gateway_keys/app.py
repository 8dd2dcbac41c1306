"""Bring-your-own key management behind a buffered function URL; the only function allowed KMS Encrypt."""

from aigateway.api import gateway_keys
from aigateway.api.app import build_app
from mangum import Mangum

app = build_app(gateway_keys.router)
handler = Mangum(app, lifespan="auto")
