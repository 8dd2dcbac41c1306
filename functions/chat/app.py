"""Streaming chat: the FastAPI app that uvicorn serves (run.sh) behind the Lambda Web Adapter.

Mangum would buffer the SSE stream, so this function has no Lambda handler of its own: the adapter
turns each function-URL request into HTTP to uvicorn and streams the answer back (RESPONSE_STREAM).
"""

from aigateway.api import anthropic_messages, chat, openai_chat, openai_responses
from aigateway.api.app import build_app
from aigateway.logs import configure_logging
from aigateway.settings import Settings

# JSON lines on Lambda, at the function's LOG_LEVEL, before anything logs.
configure_logging(Settings.from_env())

app = build_app(chat.router, openai_chat.router, openai_responses.router, anthropic_messages.router)
