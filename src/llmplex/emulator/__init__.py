"""An offline stand-in for the LLM providers llmplex talks to (OpenAI, Azure, Anthropic, Cohere v2, Gemini).

Run it with ``python -m llmplex.emulator --port 0`` (or ``llmplex-emulator``). It speaks each
provider's native wire format, takes behaviour switches from the model name (see
``directives``) and counts requests received, completed and disconnected by the client.
It deliberately imports nothing from the rest of llmplex, so an adapter's translation bug
cannot be mirrored here.
"""

from __future__ import annotations

from llmplex.emulator.app import EmulatorState, create_app
from llmplex.emulator.directives import Directives, Settings, parse_directives

__all__ = ["Directives", "EmulatorState", "Settings", "create_app", "parse_directives"]
