"""Per-configuration request policy: which paid features and which inputs callers may use.

Why: the generation routes are open to every caller of a public app, anon included, and several
OpenRouter features cost the deployment money per call whatever the model: web search (priced per
result, dearer with some engines), the OCR PDF parser (priced per page; it is also OpenRouter's
choice when a file arrives without a parser), long reasoning budgets, arbitrary plugins. None is
the caller's to turn on: a configuration's `requestPolicy` says what its callers may use, and
everything else is refused with 400 FEATURE_NOT_ALLOWED naming the field, before any limit or
upstream call is spent.

The defaults are what the native routes documented before, made explicit: web search with the
default engine and at most `DEFAULT_WEB_RESULTS` results, the free `pdf-text` parser, the `web` and
`file-parser` plugins (with the same bounds) on the OpenAI dialect, caller system messages
allowed, OpenAI's `user` not passed on (it is a caller-chosen identifier the provider may store).

Modalities are enforced here too: the configuration's `outputModality` says which route may serve
it (chat needs `text`, images `image`, embeddings `embeddings`), its `inputModality` which content
parts callers may send (image parts need `image`, audio parts `audio`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from .errors import AI_INVALID_MODEL, FEATURE_NOT_ALLOWED, TOKEN_LIMIT_EXCEEDED, GatewayError

if TYPE_CHECKING:
    from .schemas import ChatRequest, Message
    from .settings import Settings
    from .store.configs import Config

PdfEngine = Literal["pdf-text", "mistral-ocr", "native", "cloudflare-ai"]
WebEngine = Literal["native", "exa"]
PluginId = Literal["web", "file-parser", "moderation", "response-healing"]
Route = Literal["chat", "image", "embeddings"]

DEFAULT_WEB_RESULTS = 5  # what OpenRouter uses when `max_results` is not sent
_OUTPUT_FOR: dict[Route, str] = {"chat": "text", "image": "image", "embeddings": "embeddings"}
_WEB_KEYS = ("id", "engine", "max_results", "search_prompt")


class _Admin(BaseModel):
    model_config = ConfigDict(extra="forbid")  # a misspelt switch must not silently mean "default"


class WebSearchRules(_Admin):
    enabled: bool = True
    engines: list[WebEngine] = Field(default_factory=list, max_length=2)  # callers may name these
    maxResults: int = Field(default=DEFAULT_WEB_RESULTS, ge=1, le=10)


def _default_pdf_engines() -> list[PdfEngine]:
    return ["pdf-text"]


def _default_plugins() -> list[PluginId]:
    return ["web", "file-parser"]


class RequestPolicy(_Admin):
    """The `requestPolicy` of a configuration as the admin routes accept it (every key optional)."""

    systemMessages: bool = True  # caller `system` / `developer` messages; false = 400
    maxTokens: int | None = Field(default=None, ge=1, le=10_000_000)  # per-call cap, reasoning included
    webSearch: WebSearchRules = Field(default_factory=WebSearchRules)
    pdfEngines: list[PdfEngine] = Field(default_factory=_default_pdf_engines, max_length=4)
    plugins: list[PluginId] = Field(default_factory=_default_plugins, max_length=4)
    forwardUser: bool = False


_DEFAULT = RequestPolicy()


def parse(stored: dict[str, Any] | None) -> RequestPolicy:
    """A stored policy; the defaults when none is stored, nothing allowed (fail closed) when unreadable."""
    if not stored:
        return _DEFAULT
    try:
        return RequestPolicy.model_validate(stored)
    except ValidationError:
        return RequestPolicy(webSearch=WebSearchRules(enabled=False), pdfEngines=[], plugins=[])


def rules(config: Config) -> RequestPolicy:
    return parse(config.request_policy)


def refused(field: str, message: str, hint: str | None = None) -> GatewayError:
    return GatewayError(
        FEATURE_NOT_ALLOWED,
        400,
        f"{field}: {message}",
        hint or "Leave the feature out, or ask an administrator to allow it for this model.",
    )


def require_route(config: Config, route: Route) -> None:
    """A configuration serves only the routes its output modality names."""
    needed = _OUTPUT_FOR[route]
    if needed not in config.output_modality:
        served = "/".join(config.output_modality)
        raise GatewayError(
            AI_INVALID_MODEL,
            400,
            f"Model {config.model_id} is enabled for {served} output, not for {route}.",
            f"Use a model enabled with outputModality {needed!r} for this route.",
        )


def check_parts(config: Config, messages: list[Message]) -> None:
    """Image and audio parts only for configurations whose input modality includes them."""
    allowed = set(config.input_modality)
    for i, m in enumerate(messages):
        kinds = {p.type for p in m.content} if isinstance(m.content, list) else set()
        if m.images:
            kinds.add("image_url")
        for kind, modality in (("image_url", "image"), ("input_audio", "audio")):
            if kind in kinds and modality not in allowed:
                raise refused(
                    f"messages.{i}.content",
                    f"{config.model_id} does not accept {modality} input",
                    "Send text only, or use a model enabled with that input modality.",
                )


def check_system_messages(policy: RequestPolicy, config: Config, messages: list[Message]) -> None:
    if policy.systemMessages:
        return
    for i, m in enumerate(messages):
        if m.role == "system":
            raise refused(
                f"messages.{i}.role",
                f"system messages are not accepted for {config.model_id}; the administrator's system prompt applies",
                "Send the instructions as a user message.",
            )


def max_tokens(policy: RequestPolicy, settings: Settings, req: ChatRequest) -> int:
    """The call's `max_tokens`: the caller's, within the configuration's cap; else the default."""
    cap = min(settings.max_completion_tokens, policy.maxTokens or settings.max_completion_tokens)
    if req.maxTokens is not None and req.maxTokens > cap:
        raise GatewayError(
            TOKEN_LIMIT_EXCEEDED,
            400,
            f"Exceeds configured maximum token cap: maxTokens {req.maxTokens} > {cap}.",
            f"Ask for at most {cap} tokens.",
        )
    return req.maxTokens or min(settings.default_max_tokens, cap)


def _web(policy: RequestPolicy, where: str, engine: Any, max_results: Any, search_prompt: Any) -> dict[str, Any]:
    web = policy.webSearch
    if not web.enabled:
        raise refused(where, "web search is not enabled for this model")
    plugin: dict[str, Any] = {"id": "web"}
    if engine is not None:
        if engine not in web.engines:
            allowed = ", ".join(web.engines) or "none (leave the engine out)"
            raise refused(f"{where}.engine", f"engine {engine!r} is not allowed; allowed: {allowed}")
        plugin["engine"] = engine
    if max_results is not None:
        if isinstance(max_results, bool) or not isinstance(max_results, int) or not 1 <= max_results <= web.maxResults:
            raise refused(f"{where}.max_results", f"at most {web.maxResults} results are allowed")
        plugin["max_results"] = max_results
    elif web.maxResults < DEFAULT_WEB_RESULTS:
        plugin["max_results"] = web.maxResults
    if search_prompt is not None:
        if not isinstance(search_prompt, str):
            raise refused(f"{where}.search_prompt", "must be a string")
        plugin["search_prompt"] = search_prompt
    return plugin


def _file_parser(policy: RequestPolicy, where: str, engine: Any) -> dict[str, Any]:
    if not policy.pdfEngines:
        raise refused(where, "file parsing is not enabled for this model")
    if engine is None:
        engine = policy.pdfEngines[0]  # never OpenRouter's default, which may be the paid OCR
    if engine not in policy.pdfEngines:
        raise refused(
            f"{where}.engine", f"PDF engine {engine!r} is not allowed; allowed: {', '.join(policy.pdfEngines)}"
        )
    return {"id": "file-parser", "pdf": {"engine": engine}}


def native_plugins(policy: RequestPolicy, req: ChatRequest) -> list[dict[str, Any]]:
    """The plugins of the native `webSearch` / `fileParser` fields, within the policy."""
    out: list[dict[str, Any]] = []
    ws = req.webSearch
    if ws and ws.enabled:
        out.append(_web(policy, "webSearch", ws.engine, ws.maxResults, ws.searchPrompt or None))
    fp = req.fileParser
    if fp and fp.enabled:
        out.append(_file_parser(policy, "fileParser.pdf", fp.pdf.engine if fp.pdf else None))
    return out


def caller_plugins(policy: RequestPolicy, plugins: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The OpenAI dialect's `plugins`: allowed ids only, web and file-parser within the same bounds."""
    out: list[dict[str, Any]] = []
    for i, plugin in enumerate(plugins):
        where = f"plugins.{i}"
        pid = plugin.get("id")
        if pid not in policy.plugins:
            allowed = ", ".join(policy.plugins) or "none"
            raise refused(f"{where}.id", f"plugin {pid!r} is not allowed; allowed: {allowed}")
        if pid == "web":
            out.append(
                _web(policy, where, plugin.get("engine"), plugin.get("max_results"), plugin.get("search_prompt"))
            )
        elif pid == "file-parser":
            pdf = plugin.get("pdf")
            out.append(_file_parser(policy, f"{where}.pdf", pdf.get("engine") if isinstance(pdf, dict) else None))
        else:
            out.append(plugin)
    return out


def has_files(messages: list[Message]) -> bool:
    return any(isinstance(m.content, list) and any(p.type == "file" for p in m.content) for m in messages)


def implicit_file_parser(policy: RequestPolicy, plugins: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A file sent without a parser gets the policy's first PDF engine, not OpenRouter's (paid) default."""
    if any(p.get("id") == "file-parser" for p in plugins):
        return []
    return [_file_parser(policy, "messages", None)]


def clamp_reasoning(reasoning: dict[str, Any], budget: int) -> dict[str, Any]:
    """The OpenAI dialect's `reasoning` with its `max_tokens` no larger than the call's `max_tokens`."""
    out = dict(reasoning)
    value = out.get("max_tokens")
    if value is not None:
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise refused("reasoning.max_tokens", "must be a non-negative integer")
        out["max_tokens"] = min(value, budget)
    return out
