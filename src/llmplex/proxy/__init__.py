"""The OpenAI-compatible proxy: ``llmplex --config config.yaml`` (LiteLLM's config format).

``create_app(config)`` builds the ASGI app (Starlette plus a direct path for chat completions);
serve it with any ASGI server (the CLI uses uvicorn).
"""

from llmplex.proxy.app import create_app
from llmplex.proxy.config import Deployment, ProxyConfig, RouterSettings, load_config, single_model_config

__all__ = ["Deployment", "ProxyConfig", "RouterSettings", "create_app", "load_config", "single_model_config"]
