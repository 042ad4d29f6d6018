"""Management request bodies, with LiteLLM's field names (``GenerateKeyRequest``, ``UpdateKeyRequest``, ...).

Known fields are checked strictly (a bad one is a 400 naming it); fields LiteLLM has and llmplex does
not use are accepted and ignored, so LiteLLM clients need no change. ``model_fields_set`` tells an
update which fields the caller sent.
"""

from __future__ import annotations

from typing import Any, Literal, TypeVar

import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from llmplex.proxy.errors import ProxyError
from llmplex.proxy.keys.model import duration_seconds

__all__ = [
    "BlockKeyRequest",
    "DeleteKeysRequest",
    "DeleteTeamsRequest",
    "DeleteUsersRequest",
    "GenerateKeyRequest",
    "Member",
    "NewTeamRequest",
    "NewUserRequest",
    "RegenerateKeyRequest",
    "TeamMemberAddRequest",
    "UpdateKeyRequest",
    "UpdateTeamRequest",
    "UpdateUserRequest",
    "parse_body",
]

M = TypeVar("M", bound=BaseModel)
_NonNegInt = Field(default=None, ge=0)


class _Body(BaseModel):
    model_config = ConfigDict(extra="ignore", protected_namespaces=(), str_max_length=4096)


class _Limits(_Body):
    """Fields keys, users and teams share (LiteLLM's ``GenerateRequestBase``)."""

    models: list[str] | None = None
    max_budget: float | None = Field(default=None, ge=0)
    budget_duration: str | None = None
    rpm_limit: int | None = _NonNegInt
    tpm_limit: int | None = _NonNegInt
    max_parallel_requests: int | None = _NonNegInt
    metadata: dict[str, Any] | None = None
    blocked: bool | None = None

    @field_validator("budget_duration", "duration", check_fields=False)
    @classmethod
    def _duration(cls, value: str | None) -> str | None:
        if value is not None:
            duration_seconds(value)  # ValueError names the field through pydantic
        return value

    @field_validator("max_budget", mode="before")
    @classmethod
    def _empty_budget(cls, value: object) -> object:
        return None if value == "" else value  # LiteLLM's UI sends "" for "no budget"


class GenerateKeyRequest(_Limits):
    key: str | None = Field(default=None, min_length=8)  # a custom key; generated when absent
    key_alias: str | None = None
    duration: str | None = None  # expiry, e.g. "30d"; None: never
    spend: float | None = Field(default=None, ge=0)
    user_id: str | None = None
    team_id: str | None = None

    @field_validator("team_id", "user_id", mode="before")
    @classmethod
    def _blank_id(cls, value: object) -> object:
        return None if value == "" else value


class UpdateKeyRequest(GenerateKeyRequest):
    key: str | None = None  # the key (or its sha256 hex) to update

    @model_validator(mode="after")
    def _identified(self) -> UpdateKeyRequest:
        if self.key is None and self.key_alias is None:
            raise ValueError("either key or key_alias must be provided")
        return self


class RegenerateKeyRequest(GenerateKeyRequest):
    key: str | None = None
    new_key: str | None = Field(default=None, min_length=8)


class DeleteKeysRequest(_Body):
    keys: list[str] | None = None
    key_aliases: list[str] | None = None

    @model_validator(mode="after")
    def _some(self) -> DeleteKeysRequest:
        if not self.keys and not self.key_aliases:
            raise ValueError("At least one of 'keys' or 'key_aliases' must be provided.")
        return self


class BlockKeyRequest(_Body):
    key: str = Field(min_length=1)


UserRole = Literal["proxy_admin", "proxy_admin_viewer", "internal_user", "internal_user_viewer"]


class NewUserRequest(_Limits):
    user_id: str | None = None
    user_email: str | None = None
    user_alias: str | None = None
    user_role: UserRole | None = None
    teams: list[str] | None = None
    auto_create_key: bool = True
    key_alias: str | None = None
    duration: str | None = None


class UpdateUserRequest(_Limits):
    user_id: str | None = None
    user_email: str | None = None
    user_alias: str | None = None
    user_role: UserRole | None = None
    spend: float | None = Field(default=None, ge=0)

    @model_validator(mode="after")
    def _identified(self) -> UpdateUserRequest:
        if self.user_id is None and self.user_email is None:
            raise ValueError("Either user id or user email must be provided")
        return self


class DeleteUsersRequest(_Body):
    user_ids: list[str] = Field(min_length=1)


class Member(_Body):
    user_id: str | None = None
    user_email: str | None = None
    role: Literal["admin", "user"] = "user"

    @model_validator(mode="after")
    def _identified(self) -> Member:
        if self.user_id is None and self.user_email is None:
            raise ValueError("Either user id or user email must be provided")
        return self


class NewTeamRequest(_Limits):
    team_id: str | None = None
    team_alias: str | None = None
    members_with_roles: list[Member] | None = None


class UpdateTeamRequest(_Limits):
    team_id: str = Field(min_length=1)
    team_alias: str | None = None
    spend: float | None = Field(default=None, ge=0)


class DeleteTeamsRequest(_Body):
    team_ids: list[str] = Field(min_length=1)


class TeamMemberAddRequest(_Body):
    team_id: str = Field(min_length=1)
    member: Member | list[Member]

    def members(self) -> list[Member]:
        return self.member if isinstance(self.member, list) else [self.member]


def parse_body(model: type[M], body: bytes) -> M:
    """The JSON body as ``model``; anything malformed -> a 400 ``ProxyError`` naming the field."""
    try:
        data = orjson.loads(body) if body.strip() else {}
    except orjson.JSONDecodeError:
        raise ProxyError(400, "The request body is not valid JSON") from None
    if not isinstance(data, dict):
        raise ProxyError(400, "The request body must be a JSON object")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        error = exc.errors(include_url=False, include_input=False)[0]
        where = ".".join(str(part) for part in error["loc"])
        message = str(error["msg"]).removeprefix("Value error, ")
        raise ProxyError(400, f"{where}: {message}" if where else message, param=where or None) from None
