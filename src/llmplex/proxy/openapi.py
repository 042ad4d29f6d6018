"""The OpenAPI document of the proxy, built once per app from the response models' JSON schemas."""

from __future__ import annotations

from typing import Any

from llmplex import __version__
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

_REQUEST = {
    "type": "object",
    "description": "An OpenAI chat completion request. Extra provider parameters are passed through.",
    "properties": {
        "model": {
            "description": "A model_name from the config; several as 'a, b' or a JSON array",
            "oneOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}],
        },
        "messages": {"type": "array", "items": {"type": "object"}, "minItems": 1},
        "stream": {"type": "boolean"},
        "fastest_response": {
            "type": "boolean",
            "description": "With several models: race them and answer with the first success",
        },
        "hedge_delay": {
            "type": "number",
            "minimum": 0,
            "description": "With fastest_response: start the next model only after this many seconds",
        },
    },
    "required": ["model", "messages"],
    "additionalProperties": True,
}


def _errors(*statuses: int) -> dict[str, Any]:
    ref = {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
    return {str(s): {"description": "Error", **ref} for s in statuses}


def openapi_document() -> dict[str, Any]:
    chat_ok = {
        "description": "A chat completion; an array of them (or error objects) for several models without "
        "fastest_response; an SSE stream of chunks with stream=true",
        "content": {
            "application/json": {
                "schema": {
                    "oneOf": [
                        {"$ref": "#/components/schemas/ChatCompletion"},
                        {"type": "array", "items": {"$ref": "#/components/schemas/ChatCompletion"}},
                    ]
                }
            },
            "text/event-stream": {"schema": {"$ref": "#/components/schemas/ChatCompletionChunk"}},
        },
    }
    chat = {
        "post": {
            "summary": "Create a chat completion (one model, several in parallel, or a race)",
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ChatCompletionRequest"}}},
            },
            "responses": {"200": chat_ok, **_errors(400, 401, 413, 429, 500, 502, 504)},
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
    schemas: dict[str, Any] = {
        "ChatCompletionRequest": _REQUEST,
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
            "/health/readiness": health,
        },
        "components": {"schemas": schemas, "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}},
    }


def _schema(model: type[ModelResponse] | type[ModelResponseStream], schemas: dict[str, Any]) -> dict[str, Any]:
    schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
    schemas.update(schema.pop("$defs", {}))  # nested definitions live next to the top-level ones
    return schema
