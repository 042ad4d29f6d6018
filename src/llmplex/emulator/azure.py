"""Azure OpenAI: the OpenAI format behind deployment URLs, ``api-key`` auth and Azure's own error shapes."""

from __future__ import annotations

from typing import Any

import orjson

from llmplex.emulator.conversation import Reply, new_id
from llmplex.emulator.dialect import Failure, Incoming, bearer_token
from llmplex.emulator.openai import OpenAIDialect
from llmplex.emulator.sse import data_event

__all__ = ["AzureDialect"]

_ACCESS_DENIED = (
    "Access denied due to invalid subscription key or wrong API endpoint. Make sure to provide a valid key for an "
    "active subscription and use a correct regional API endpoint for your resource."
)
_MESSAGES = {
    404: (
        "DeploymentNotFound",
        "The API deployment for this resource does not exist. If you created the deployment within the last "
        "5 minutes, please wait a moment and try again.",
    ),
    429: (
        "429",
        "Requests to the ChatCompletions_Create Operation under Azure OpenAI API version 2024-10-21 have exceeded "
        "call rate limit of your current OpenAI S0 pricing tier. Please retry after 1 second.",
    ),
    500: ("InternalServerError", "The server had an error while processing your request."),
}
_SAFE = {"filtered": False, "severity": "safe"}
_FILTER_RESULTS = {"hate": _SAFE, "self_harm": _SAFE, "sexual": _SAFE, "violence": _SAFE}


class AzureDialect(OpenAIDialect):
    name = "azure"

    def response_headers(self) -> list[tuple[bytes, bytes]]:
        request_id = new_id("").encode()
        return [(b"x-request-id", request_id), (b"apim-request-id", request_id), (b"x-ms-region", b"Emulated")]

    def authenticate(self, incoming: Incoming) -> Failure | None:
        key = incoming.headers.get("api-key") or bearer_token(incoming.headers)
        if key is None or key == "bad-key":
            return self._azure_error(401, "401", _ACCESS_DENIED)
        if "api-version" not in incoming.query:
            return self._azure_error(404, "404", "Resource not found")
        return None

    def validate(self, payload: dict[str, Any]) -> Failure | None:
        return self.validate_messages(payload)  # the deployment names the model; the body's model is optional

    def model_name(self, incoming: Incoming, payload: dict[str, Any]) -> str:
        return incoming.path_params.get("deployment", "")

    def failure(
        self, status: int, message: str | None = None, *, model: str = "", retry_after: int | None = None
    ) -> Failure:
        if status == 400:  # Azure passes OpenAI's own 400 bodies through
            return super().failure(status, message, model=model)
        code, stock = _MESSAGES.get(status, (str(status), f"Emulated error (status {status})."))
        return self._azure_error(status, code, message or stock)

    @staticmethod
    def _azure_error(status: int, code: str, message: str) -> Failure:
        return Failure(status, orjson.dumps({"error": {"code": code, "message": message}}))

    def decorate_completion(self, body: dict[str, Any]) -> None:
        body["prompt_filter_results"] = [{"prompt_index": 0, "content_filter_results": _FILTER_RESULTS}]
        for choice in body["choices"]:
            choice["content_filter_results"] = _FILTER_RESULTS

    def stream_preamble(self, reply: Reply) -> bytes:
        # Azure opens streams with a choice-less chunk carrying only the prompt filter results
        return data_event(
            {
                "choices": [],
                "created": 0,
                "id": "",
                "model": "",
                "object": "",
                "prompt_filter_results": [{"prompt_index": 0, "content_filter_results": _FILTER_RESULTS}],
            }
        )
