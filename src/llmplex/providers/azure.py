"""Azure OpenAI: the OpenAI wire format at a deployment URL, with ``api-version`` and ``api-key``."""

from __future__ import annotations

from urllib.parse import quote

from llmplex.exceptions import BadRequestError
from llmplex.providers.base import CompletionRequest, Endpoint
from llmplex.providers.openai_compat import OpenAIAdapter

__all__ = ["AzureAdapter"]

DEFAULT_API_VERSION = "2024-10-21"


class AzureAdapter(OpenAIAdapter):
    name = "azure"
    default_base_url = None
    api_key_env = ("AZURE_API_KEY", "AZURE_OPENAI_API_KEY")
    api_version_env = ("AZURE_API_VERSION", "OPENAI_API_VERSION")
    requires_api_base = True

    def chat_url(self, request: CompletionRequest, endpoint: Endpoint) -> str:
        base = endpoint.base_url.rstrip("/")
        if not base:
            raise BadRequestError("azure needs api_base (e.g. https://<resource>.openai.azure.com)", provider=self.name)
        version = endpoint.api_version or DEFAULT_API_VERSION
        # the model id is the deployment name
        deployment = quote(request.model, safe="")
        if base.endswith("/openai"):
            base = base[: -len("/openai")]
        return f"{base}/openai/deployments/{deployment}/chat/completions?api-version={quote(version, safe='')}"

    def auth_headers(self, endpoint: Endpoint) -> dict[str, str]:
        return {"api-key": endpoint.api_key} if endpoint.api_key else {}
