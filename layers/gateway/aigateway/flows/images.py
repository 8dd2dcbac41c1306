"""Image generation: validate → gate → policy → limits → N upstream calls → store? → the billing row.

Upstream is OpenRouter chat completions with `modalities: ["image", "text"]`; images come back as
base64 data URLs in `message.images`, and the answer passes them on as `imageUrl` (the InsForge
SDK turns a data URL into `b64_json`, so data URLs are the default).

How the InsForge request's parameters map onto a chat-completions call (OpenRouter has no size, quality or
style parameters):
- `size` `WxH` → `image_config.aspect_ratio`: the reduced ratio, or the nearest ratio the image
  models support (`SUPPORTED_RATIOS`, compared on a log scale so 2:1 and 1:2 are equally far from
  1:1). 1792x1024 → 16:9, 1024x1024 → 1:1.
- `quality` and `style` become one short instruction line appended to the prompt
  (`QUALITY_HINTS`, `STYLE_HINTS`, worded after DALL·E 3's definitions of the same options);
  `standard` is the model's default and adds nothing.
- `numImages` (1-4) → that many identical calls in parallel, images concatenated in call order.
  If some calls fail, the images of the others are returned (and only they are counted); if all
  fail, the first call's mapped error is the answer.
- the admin's system prompt is prefixed to the prompt (`system + "\\n\\n" + prompt`): image models
  ignore system messages.

A JSON answer over `INLINE_LIMIT_BYTES` (a Lambda buffered response is capped at 6 MB) or a
request with `"storage": true` has its images stored (image_store.py) and carries URLs instead.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .. import limits, policy
from .. import request_policy as features
from ..credentials import ResolvedKey, with_key
from ..errors import CONTENT_BLOCKED, SERVICE_UNAVAILABLE, GatewayError, invalid_input
from ..image_store import decode_data_url
from ..schemas import ImageRequest
from ..store.configs import Config
from ..store.usage import UsageRecord
from ..usage import Usage
from .common import Answer, CallContext, content_text, gate
from .metering import settle

if TYPE_CHECKING:
    from ..limits import Admission
    from ..services import Services

log = logging.getLogger(__name__)

MAX_IMAGES = 4
INLINE_LIMIT_BYTES = 5_500_000  # Lambda's 6 MB response cap, less headers and encoding headroom
SUPPORTED_RATIOS = ("1:1", "2:3", "3:2", "3:4", "4:3", "4:5", "5:4", "9:16", "16:9", "21:9")
QUALITY_HINTS = {"hd": "Render it in high definition, with fine detail and crisp, consistent textures."}
STYLE_HINTS = {
    "vivid": "Make it vivid: hyper-real and dramatic, with bold colours and striking lighting.",
    "natural": "Make it natural: realistic and understated, with true-to-life colours and lighting.",
}


@dataclass
class Images:
    """The generated images (data URLs, or stored images' links), the model's text, their usage."""

    urls: list[str]
    text: str | None
    usage: Usage | None


@dataclass
class PreparedImages:
    ctx: CallContext
    config: Config
    model: str
    payload: dict[str, Any]
    admission: Admission
    count: int
    resolution: str | None


def _ratio_value(ratio: str) -> float:
    w, _, h = ratio.partition(":")
    return int(w) / int(h)


def aspect_ratio(size: str) -> str:
    """`WxH` → the supported aspect ratio closest to W:H (exact when it is one of them)."""
    w_text, _, h_text = size.lower().partition("x")
    w, h = int(w_text), int(h_text)
    if w <= 0 or h <= 0:
        raise invalid_input("Validation error: size: width and height must be positive, e.g. 1024x1024")
    g = math.gcd(w, h)
    exact = f"{w // g}:{h // g}"
    if exact in SUPPORTED_RATIOS:
        return exact
    target = math.log(w / h)
    return min(SUPPORTED_RATIOS, key=lambda r: abs(math.log(_ratio_value(r)) - target))


def check_caps(req: ImageRequest) -> None:
    if req.numImages is not None and req.numImages > MAX_IMAGES:
        raise invalid_input(
            f"Validation error: numImages: at most {MAX_IMAGES} images per request (got {req.numImages})",
            f"Ask for 1 to {MAX_IMAGES} images, or send several requests.",
        )


def prompt_text(config: Config, req: ImageRequest) -> str:
    hints = [h for h in (QUALITY_HINTS.get(req.quality or ""), STYLE_HINTS.get(req.style or "")) if h]
    text = req.prompt + ("\n\n" + " ".join(hints) if hints else "")
    return f"{config.system_prompt}\n\n{text}" if config.system_prompt else text


def upstream_payload(config: Config, req: ImageRequest, model: str) -> dict[str, Any]:
    text = prompt_text(config, req)
    content: str | list[dict[str, Any]] = text
    if req.images:
        content = [{"type": "text", "text": text}]
        content.extend({"type": "image_url", "image_url": {"url": i.url}} for i in req.images)
    payload: dict[str, Any] = {
        "model": model,
        "messages": [{"role": "user", "content": content}],
        "modalities": ["image", "text"],
        "stream": False,
    }
    if req.size:
        payload["image_config"] = {"aspect_ratio": aspect_ratio(req.size)}
    if config.fallback_models:
        payload["models"] = [m for m in config.fallback_models if m != model]
    plugins = policy.upstream_plugins(config.content_policy)
    if plugins:
        payload["plugins"] = plugins
    return payload


async def prepare(svc: Services, ctx: CallContext, req: ImageRequest) -> PreparedImages:
    """Every check before the upstream calls; raises GatewayError with the contract's code."""
    check_caps(req)
    if req.size:
        aspect_ratio(req.size)  # a bad size is a 400 before anything else is spent
    config = await gate(svc, req.model)
    features.require_route(config, "image")
    if req.images and "image" not in config.input_modality:
        raise features.refused("images", f"{config.model_id} does not accept image input")
    await policy.check_content(
        svc, ctx.principal, ctx.ip, config_id=config.id, policy=config.content_policy, texts=[req.prompt]
    )
    admission = await limits.admit(svc, ctx.principal, ctx.ip, model=req.model, kind="image")
    payload = upstream_payload(config, req, req.model)
    return PreparedImages(ctx, config, req.model, payload, admission, req.numImages or 1, req.size)


async def _one(svc: Services, prep: PreparedImages) -> tuple[dict[str, Any], ResolvedKey]:
    headers = prep.ctx.upstream_headers
    return await with_key(
        svc.keys, svc.settings, lambda k: svc.upstream.chat(k.key, prep.payload, extra_headers=headers)
    )


async def generate(svc: Services, prep: PreparedImages) -> list[tuple[dict[str, Any], ResolvedKey]]:
    """`count` upstream calls at once; the successful ones, or the first failure when none succeeded."""
    outcomes = await asyncio.gather(*(_one(svc, prep) for _ in range(prep.count)), return_exceptions=True)
    done: list[tuple[dict[str, Any], ResolvedKey]] = []
    failures: list[BaseException] = []
    for outcome in outcomes:
        if isinstance(outcome, BaseException):
            if not isinstance(outcome, Exception):
                raise outcome  # cancellation and the like are not "a call failed"
            failures.append(outcome)
        else:
            done.append(outcome)
    if any(isinstance(f, GatewayError) and f.code == CONTENT_BLOCKED for f in failures):
        await policy.audit_upstream_block(
            svc, prep.ctx.principal, prep.ctx.ip, config_id=prep.config.id, model=prep.model
        )
    if not done:
        raise next((f for f in failures if isinstance(f, GatewayError)), failures[0])
    if failures:
        log.warning(
            "image request %s: %d of %d upstream calls failed (%s); returning the rest",
            prep.ctx.request_id,
            len(failures),
            prep.count,
            type(failures[0]).__name__,
        )
    return done


def collect(bodies: list[dict[str, Any]]) -> Images:
    """The images, last text and summed usage of the successful upstream answers, in call order."""
    text: str | None = None
    urls: list[str] = []
    for body in bodies:
        for choice in body.get("choices") or ():
            message = choice.get("message") if isinstance(choice, dict) else None
            if not isinstance(message, dict):
                continue
            content = content_text(message.get("content"))
            if content:
                text = content
            for img in message.get("images") or ():
                if not isinstance(img, dict) or img.get("type", "image_url") != "image_url":
                    continue
                url = (img.get("image_url") or {}).get("url")
                if isinstance(url, str) and url:
                    urls.append(url)
    usages = [u for u in (Usage.read(b.get("usage")) for b in bodies) if u is not None]
    return Images(urls, text, Usage.combine(usages))


def usage_record(
    prep: PreparedImages, results: list[tuple[dict[str, Any], ResolvedKey]], images: Images
) -> UsageRecord:
    served = results[0][0].get("model")
    usage = images.usage
    return UsageRecord(
        request_id=prep.ctx.request_id,
        model_id=served if isinstance(served, str) and served else prep.model,
        kind="image",
        config_id=prep.config.id,
        input_tokens=usage.prompt if usage else None,
        output_tokens=usage.completion if usage else None,
        image_count=len(images.urls),
        image_resolution=prep.resolution,
        user_id=prep.ctx.principal.user_id,
        cost_usd=usage.cost_usd if usage else None,
        key_source=results[0][1].source,
        latency_ms=int((time.perf_counter() - prep.ctx.started) * 1000),
    )


def inline_size(images: Images) -> int:
    """About how many bytes the JSON answer takes (image URLs dominate; no need to encode it)."""
    return sum(len(u) + 40 for u in images.urls) + 2 * len(images.text or "") + 512


async def store_images(svc: Services, prep: PreparedImages, urls: list[str], base_url: str) -> list[str]:
    """Each data URL replaced by a stored image's time-limited URL (other URLs kept as they are)."""
    store = svc.images
    jobs: dict[int, Any] = {}
    for index, url in enumerate(urls):
        decoded = decode_data_url(url)
        if decoded is not None:
            jobs[index] = store.put(prep.ctx.request_id, index, decoded, base_url=base_url)
    stored = dict(zip(jobs, await asyncio.gather(*jobs.values()), strict=True))
    return [stored.get(i, url) for i, url in enumerate(urls)]


async def image_generation(svc: Services, ctx: CallContext, req: ImageRequest, base_url: str) -> Answer[Images]:
    prep = await prepare(svc, ctx, req)
    results = await generate(svc, prep)
    images = collect([b for b, _ in results])
    record = usage_record(prep, results, images)
    too_big = inline_size(images) > INLINE_LIMIT_BYTES
    if (req.storage or too_big) and images.urls:
        try:
            images.urls = await store_images(svc, prep, images.urls, base_url)
        except Exception as exc:
            log.exception("storing generated images failed for request %s", ctx.request_id)
            if too_big:
                await settle(svc, prep.admission, record)  # the images were generated and paid for
                raise GatewayError(
                    SERVICE_UNAVAILABLE,
                    503,
                    "The generated images are too large to return inline and could not be stored.",
                    "Retry in a moment, or ask for fewer or smaller images.",
                ) from exc
            # Otherwise the data URLs fit in the answer: they are returned instead of links.
    return Answer(images, prep.model, ctx.request_id, record, prep.admission)
