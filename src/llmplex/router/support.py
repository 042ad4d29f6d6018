"""Which deployments llmplex can serve, and on which endpoint (``model_info.mode``).

A LiteLLM ``model_list`` may hold deployments llmplex cannot call: a provider it has no adapter for
(``sagemaker/``, ``bedrock/``), a mode it has no endpoint for (images, audio, rerank), a bare name no
provider claims (``dall-e-3``). Such a deployment is kept but disabled: named in a startup warning,
and a request for it answers 400 with ``unsupported_message``. ``model_info.mode`` decides the mode;
without it the mode is inferred from the model name, the way LiteLLM's model map would classify it.
"""

from __future__ import annotations

from dataclasses import dataclass

from llmplex.exceptions import UnknownModelError
from llmplex.providers import resolve_model

__all__ = ["SERVED_MODES", "Support", "check_support", "infer_mode", "not_chat_message", "unsupported_message"]

# the modes llmplex has an endpoint for (chat: /chat/completions, completion: /completions, embedding: /embeddings)
SERVED_MODES = frozenset({"chat", "completion", "embedding"})
# modes whose deployments the chat endpoint refuses (naming the right endpoint) instead of a wrong upstream call
_NOT_CHAT = {"embedding": "/v1/embeddings", "completion": "/v1/completions"}
_MODE_NAMES = {
    "completion": "text completions (mode 'completion')",
    "embedding": "embeddings (mode 'embedding')",
    "image_generation": "image generation (mode 'image_generation')",
    "audio_transcription": "audio transcription (mode 'audio_transcription')",
    "audio_speech": "text to speech (mode 'audio_speech')",
    "rerank": "rerank (mode 'rerank')",
    "moderation": "moderations (mode 'moderation')",
}
# name fragments -> mode, checked in order, when model_info.mode is not given
_NAME_MODES = (
    ("embed", "embedding"),
    ("dall-e", "image_generation"),
    ("gpt-image", "image_generation"),
    ("imagen", "image_generation"),
    ("whisper", "audio_transcription"),
    ("transcribe", "audio_transcription"),
    ("tts", "audio_speech"),
    ("rerank", "rerank"),
    ("moderation", "moderation"),
)
_COMPLETION_PROVIDERS = frozenset({"text-completion-openai", "text-completion-codestral"})


@dataclass(frozen=True, slots=True)
class Support:
    provider: str  # "" when no provider claims the model
    mode: str
    problem: str | None  # None: llmplex serves it; else what it does not support

    @property
    def served(self) -> bool:
        return self.problem is None


def infer_mode(model: str, declared: object = None) -> str:
    if isinstance(declared, str) and declared:
        return declared
    prefix = model.partition("/")[0] if "/" in model else ""
    if prefix in _COMPLETION_PROVIDERS:
        return "completion"
    lowered = model.lower()
    for fragment, mode in _NAME_MODES:
        if fragment in lowered:
            return mode
    return "chat"


def check_support(model: str, custom_llm_provider: str | None = None, declared_mode: object = None) -> Support:
    """What llmplex makes of a deployment's ``litellm_params.model`` (and ``model_info.mode``)."""
    mode = infer_mode(model, declared_mode)
    if mode not in SERVED_MODES:  # said first: what the deployment is for matters more than its provider
        provider = _provider_or_empty(model, custom_llm_provider)
        return Support(provider=provider, mode=mode, problem=_MODE_NAMES.get(mode, f"mode {mode!r}"))
    try:
        provider, _ = resolve_model(model, custom_llm_provider=custom_llm_provider)
    except UnknownModelError:
        prefix, slash, rest = model.partition("/")
        if slash and prefix and not rest:
            what = f"model {model!r} (nothing after the provider prefix)"
        elif slash and prefix:
            what = f"text completions ({prefix}/)" if prefix in _COMPLETION_PROVIDERS else f"provider {prefix!r}"
        elif custom_llm_provider:
            what = f"provider {custom_llm_provider!r}"
        else:
            what = f"model {model!r} (no provider prefix and not a known model name)"
        return Support(provider="", mode=mode, problem=what)
    return Support(provider=provider, mode=mode, problem=None)


def _provider_or_empty(model: str, custom_llm_provider: str | None) -> str:
    try:
        return resolve_model(model, custom_llm_provider=custom_llm_provider)[0]
    except UnknownModelError:
        return ""


def unsupported_message(problem: str, model_name: str) -> str:
    return f"llmplex does not support {problem} (deployment {model_name})"


def not_chat_message(mode: str, group: str) -> str | None:
    """Why the chat endpoint refuses group ``group`` whose deployments are of ``mode``, or None when it serves it."""
    endpoint = _NOT_CHAT.get(mode)
    if endpoint is None:
        return None
    return f"model {group!r} is for {_MODE_NAMES[mode]}: call {endpoint}, not /chat/completions"
