"""The OpenAPI document of the proxy, built once per app from the response models' JSON schemas."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from llmplex import __version__
from llmplex.proxy.params import ADAPTER_KEYS, MAX_HEDGE_DELAY, MAX_MODELS, MAX_TIMEOUT
from llmplex.proxy.request import FORBIDDEN_FIELDS
from llmplex.types import ModelResponse, ModelResponseStream

__all__ = ["openapi_document"]

_ERROR = {
    "type": "object",
    "properties": {
        "error": {
            "type": "object",
            "properties": {
                "message": {"type": "string"},
                "type": {"type": "string"},
                "param": {"type": ["string", "null"]},
                "code": {"type": ["string", "null"]},
            },
            "required": ["message", "type", "param", "code"],
        }
    },
    "required": ["error"],
}

_ROLES = ["system", "developer", "user", "assistant", "tool", "function"]
_PART = {
    "type": "object",
    "properties": {"type": {"type": "string"}, "text": {"type": "string"}},
    "required": ["type"],
    "if": {"properties": {"type": {"const": "text"}}},
    "then": {"required": ["text"]},
}
_MESSAGE = {
    "type": "object",
    "properties": {
        "role": {"enum": _ROLES},
        "content": {"oneOf": [{"type": "string"}, {"type": "null"}, {"type": "array", "items": _PART}]},
        "name": {"type": "string"},
        "tool_call_id": {"type": ["string", "null"]},
        "tool_calls": {
            "type": ["array", "null"],
            "items": {
                "type": "object",
                "properties": {
                    "id": {"type": "string"},
                    "type": {"const": "function"},
                    "function": {
                        "type": "object",
                        "properties": {"name": {"type": "string"}, "arguments": {"type": ["string", "object", "null"]}},
                        "required": ["name"],
                    },
                },
                "required": ["function"],
            },
        },
    },
    "required": ["role"],
}
_RESPONSE_FORMAT = {
    "type": ["object", "null"],
    "properties": {
        "type": {"enum": ["text", "json_object", "json_schema"]},
        "json_schema": {
            "type": "object",
            "properties": {"name": {"type": "string"}, "schema": {"type": "object"}},
        },
    },
    "required": ["type"],
    "if": {"properties": {"type": {"const": "json_schema"}}, "required": ["type"]},
    "then": {"required": ["json_schema"]},
}
_CANDIDATES = {"type": "object", "properties": {"candidateCount": {"type": "integer", "minimum": 1, "maximum": 128}}}
_TOOL = {
    "type": "object",
    "properties": {
        "type": {"const": "function"},
        "function": {
            "type": "object",
            "properties": {
                "name": {"type": "string", "pattern": "^[A-Za-z0-9_-]{1,64}$"},
                "description": {"type": "string"},
                "parameters": {"type": "object"},
            },
            "required": ["name"],
        },
    },
    "required": ["type", "function"],
}


def _request_schema(model_names: Sequence[str]) -> dict[str, Any]:
    name: dict[str, Any] = {"type": "string", "minLength": 1}
    if model_names:
        name = {"enum": list(model_names)}
    number = {"type": ["number", "null"]}
    integer = {"type": ["integer", "null"]}
    model = {
        "description": "A model_name from the config; several as an array (or 'a, b')",
        "oneOf": [name, {"type": "array", "items": name, "minItems": 1, "maxItems": MAX_MODELS}],
    }
    # the OpenAI parameters, checked alike at the top level and inside extra_body
    params: dict[str, Any] = {
        "stream_options": {
            "type": ["object", "null"],
            "properties": {"include_usage": {"type": ["boolean", "null"]}},
        },
        "n": {**integer, "minimum": 1, "maximum": 128},
        "max_tokens": {**integer, "minimum": 1},
        "max_completion_tokens": {**integer, "minimum": 1},
        "temperature": {**number, "minimum": 0, "maximum": 2},
        "top_p": {**number, "minimum": 0, "maximum": 1},
        "presence_penalty": {**number, "minimum": -2, "maximum": 2},
        "frequency_penalty": {**number, "minimum": -2, "maximum": 2},
        "seed": integer,
        "stop": {
            "oneOf": [
                {"type": "string"},
                {"type": "null"},
                {"type": "array", "items": {"type": "string"}, "maxItems": 4},
            ]
        },
        "user": {"type": ["string", "null"]},
        "tools": {"type": ["array", "null"], "items": _TOOL},
        "tool_choice": {"oneOf": [{"enum": ["none", "auto", "required"]}, {"type": "object"}, {"type": "null"}]},
        "response_format": _RESPONSE_FORMAT,
        "logit_bias": {"type": ["object", "null"]},
        "metadata": {"type": ["object", "null"]},
        "logprobs": {"type": ["boolean", "null"]},
        "top_logprobs": {**integer, "minimum": 0, "maximum": 20},
        "parallel_tool_calls": {"type": ["boolean", "null"]},
        "reasoning_effort": {"type": ["string", "null"]},
        "drop_params": {"type": ["boolean", "null"]},
        "timeout": {**number, "minimum": 1, "maximum": MAX_TIMEOUT, "description": "Upstream timeout, seconds"},
        "request_timeout": {**number, "minimum": 1, "maximum": MAX_TIMEOUT},
    }
    # never settable through the proxy (400): credentials and call settings, and what the adapters build
    refused = dict.fromkeys([*FORBIDDEN_FIELDS, *sorted(ADAPTER_KEYS - {"model", "messages", "stream"})], False)
    extra_body = {
        "type": ["object", "null"],
        "description": "Provider fields added to the upstream body; never the model, messages or stream",
        "properties": {
            **params,
            **refused,
            **dict.fromkeys(["model", "messages", "stream"], False),
            "generationConfig": _CANDIDATES,
            "generation_config": _CANDIDATES,
        },
        "additionalProperties": True,
    }
    return {
        "type": "object",
        "description": "An OpenAI chat completion request. Other provider parameters are passed through; "
        "null means 'not set'.",
        "properties": {
            "model": model,
            "messages": {"type": "array", "items": _MESSAGE, "minItems": 1},
            "stream": {"type": ["boolean", "null"]},
            **params,
            **refused,
            "extra_body": extra_body,
            "fastest_response": {
                "type": "boolean",
                "description": "With several models: race them and answer with the first success",
            },
            "hedge_delay": {
                "oneOf": [
                    {"type": ["number", "null"], "minimum": 0, "maximum": MAX_HEDGE_DELAY},
                    {"const": "auto"},
                ],
                "description": "With fastest_response: start the next model only after this many seconds; "
                '"auto": after the hedge_quantile of the first model\'s recent latencies (0.5 s until 8 are known)',
            },
            "hedge_quantile": {
                "type": ["number", "null"],
                "exclusiveMinimum": 0,
                "maximum": 1,
                "description": 'With "hedge_delay": "auto": the latency quantile to hedge after (default 0.9)',
            },
        },
        "required": ["model", "messages"],
        # a stream has one answer: several models may only stream as a race
        "if": {
            "properties": {"model": {"type": "array", "minItems": 2}, "stream": {"const": True}},
            "required": ["model", "stream"],
        },
        "then": {"properties": {"fastest_response": {"const": True}}, "required": ["fastest_response"]},
        # a quantile only means something for an adaptive hedge delay
        "allOf": [
            {
                "if": {"properties": {"hedge_quantile": {"type": "number"}}, "required": ["hedge_quantile"]},
                "then": {"properties": {"hedge_delay": {"const": "auto"}}, "required": ["hedge_delay"]},
            }
        ],
        "additionalProperties": True,
    }


def _errors(*statuses: int) -> dict[str, Any]:
    ref = {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
    return {str(s): {"description": "Error", **ref} for s in statuses}


def openapi_document(model_names: Sequence[str] = ()) -> dict[str, Any]:
    """The document; ``model_names`` (the configured names) make ``model`` an enum clients can rely on."""
    chat_ok = {
        "description": "A chat completion; an array of them (or error objects) for several models without "
        "fastest_response; an SSE stream of chunks with stream=true",
        "content": {
            "application/json": {
                "schema": {
                    "oneOf": [
                        {"$ref": "#/components/schemas/ChatCompletion"},
                        {
                            "type": "array",
                            "items": {
                                "oneOf": [
                                    {"$ref": "#/components/schemas/ChatCompletion"},
                                    {"$ref": "#/components/schemas/Error"},
                                ]
                            },
                        },
                    ]
                }
            },
            # one schema per SSE event: `data` is a JSON ChatCompletionChunk, a JSON error object or [DONE]
            "text/event-stream": {
                "schema": {
                    "type": "object",
                    "properties": {
                        "data": {
                            "anyOf": [
                                {"const": "[DONE]"},
                                {
                                    "type": "string",
                                    "contentMediaType": "application/json",
                                    "contentSchema": {
                                        "oneOf": [
                                            {"$ref": "#/components/schemas/ChatCompletionChunk"},
                                            {"$ref": "#/components/schemas/Error"},
                                        ]
                                    },
                                },
                            ]
                        }
                    },
                    "required": ["data"],
                }
            },
        },
    }
    chat = {
        "post": {
            "summary": "Create a chat completion (one model, several in parallel, or a race)",
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ChatCompletionRequest"}}},
            },
            "responses": {"200": chat_ok, **_errors(400, 401, 408, 413, 429, 431, 500, 502, 503, 504)},
            "security": [{"bearer": []}],
        }
    }
    models = {
        "get": {
            "summary": "List the model names clients may use",
            "responses": {"200": {"description": "OpenAI model list"}, **_errors(401)},
            "security": [{"bearer": []}],
        }
    }
    health = {"get": {"summary": "Health check", "responses": {"200": {"description": "OK"}}}}
    readiness = {
        "get": {
            "summary": "Ready to serve",
            "responses": {"200": {"description": "Ready"}, "503": {"description": "Starting or stopping"}},
        }
    }
    metrics = {
        "get": {
            "summary": "Prometheus metrics of this worker",
            "responses": {
                "200": {"description": "Prometheus text format", "content": {"text/plain": {}}},
                **_errors(401),
            },
            "security": [{"bearer": []}],
        }
    }
    document = {
        "get": {
            "summary": "This document",
            "responses": {"200": {"description": "OpenAPI 3.1"}, **_errors(401)},
            "security": [{"bearer": []}],
        }
    }
    schemas: dict[str, Any] = {
        "ChatCompletionRequest": _request_schema(model_names),
        "Error": _ERROR,
    }
    schemas["ChatCompletion"] = _schema(ModelResponse, schemas)
    schemas["ChatCompletionChunk"] = _schema(ModelResponseStream, schemas)
    return {
        "openapi": "3.1.0",
        "info": {"title": "llmplex proxy", "version": __version__},
        "paths": {
            "/chat/completions": chat,
            "/v1/chat/completions": chat,
            "/models": models,
            "/v1/models": models,
            "/health/liveliness": health,
            "/health/readiness": readiness,
            "/metrics": metrics,
            "/openapi.json": document,
        },
        "components": {"schemas": schemas, "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}},
    }


def _schema(model: type[ModelResponse] | type[ModelResponseStream], schemas: dict[str, Any]) -> dict[str, Any]:
    schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
    schemas.update(schema.pop("$defs", {}))  # nested definitions live next to the top-level ones
    return schema
