"""OpenAI's legacy text completions (``POST {base}/completions``; Azure: the deployment's ``/completions``):
pure translation of the request, the ``text_completion`` body and its stream events."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import orjson

from llmplex._sse import SSEEvent
from llmplex.endpoint_types import TextCompletionResponse
from llmplex.exceptions import StreamError
from llmplex.providers.azure import DEFAULT_API_VERSION
from llmplex.providers.base import Endpoint, HTTPRequest, ProviderAdapter, openai_error_details
from llmplex.providers.openai_compat import OpenAIAdapter

__all__ = ["TEXT_PARAMS", "OpenAITextCompletions"]

TEXT_PARAMS = frozenset(
    {
        "best_of",
        "echo",
        "frequency_penalty",
        "logit_bias",
        "logprobs",
        "max_tokens",
        "n",
        "presence_penalty",
        "seed",
        "stop",
        "stream_options",
        "suffix",
        "temperature",
        "top_p",
        "user",
    }
)


class OpenAITextCompletions:
    def __init__(self, chat: ProviderAdapter) -> None:
        self.chat = chat

    @property
    def name(self) -> str:
        return self.chat.name

    def url(self, model: str, endpoint: Endpoint) -> str:
        base = endpoint.base_url.rstrip("/")
        if self.chat.name != "azure":
            return base + "/completions"
        if base.endswith("/openai"):
            base = base[: -len("/openai")]
        version = quote(endpoint.api_version or DEFAULT_API_VERSION, safe="")
        return f"{base}/openai/deployments/{quote(model, safe='')}/completions?api-version={version}"

    def build_request(
        self, model: str, prompt: Any, params: dict[str, Any], stream: bool, endpoint: Endpoint
    ) -> HTTPRequest:
        body: dict[str, Any] = {"model": model, "prompt": prompt, **params}
        if stream:
            body["stream"] = True
        else:
            body.pop("stream_options", None)
        chat = self.chat
        headers = chat.auth_headers(endpoint) if isinstance(chat, OpenAIAdapter) else {}
        headers = {**headers, **endpoint.headers}
        if stream:
            headers["Accept"] = "text/event-stream"
        return HTTPRequest.post_json(self.url(model, endpoint), headers, body)

    def parse_response(self, body: Any) -> TextCompletionResponse:
        if not isinstance(body, dict) or not isinstance(body.get("choices"), list):
            raise StreamError(f"{self.name} returned a completions body without choices", provider=self.name)
        return TextCompletionResponse.model_validate(body)

    def parse_event(self, event: SSEEvent) -> TextCompletionResponse | None:
        """A chunk, or None for events without one; raises ``StreamError`` on an error event."""
        data = event.data
        if not data or data.startswith("[DONE]"):
            return None
        try:
            obj = orjson.loads(data)
        except orjson.JSONDecodeError:
            raise StreamError(f"malformed stream event from {self.name}: {data[:200]!r}", provider=self.name) from None
        if not isinstance(obj, dict):
            raise StreamError(f"malformed stream event from {self.name}", provider=self.name)
        if obj.get("error"):
            details = openai_error_details(500, obj)
            raise StreamError(details.message, provider=self.name, body=obj, code=details.code, type=details.type)
        if not obj.get("choices") and not obj.get("usage"):
            return None
        obj.setdefault("object", "text_completion")
        return TextCompletionResponse.model_validate(obj)
