"""Every key, user and team in memory: the only thing the request path reads.

The cache is replaced wholesale from the store (``replace``) whenever another process changed
something (the epoch row moved, or Redis said so) and every few seconds for spend. Between
reloads, this process adds its own spend at once (``add_spend``), so a budget trips on the request
that crosses it, not on the next reload.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from llmplex.proxy.keys.model import Entity, Kind, Principal

__all__ = ["KeyCache"]


class KeyCache:
    def __init__(self) -> None:
        self.keys: dict[str, Entity] = {}
        self.users: dict[str, Entity] = {}
        self.teams: dict[str, Entity] = {}
        self._principals: dict[str, Principal] = {}  # token -> caller, rebuilt with the content (not per request)
        self.epoch = -1  # the store's epoch this content reflects; -1: never loaded
        self.loaded = False

    def _table(self, kind: Kind) -> dict[str, Entity]:
        return self.keys if kind == "key" else self.users if kind == "user" else self.teams

    def replace(self, epoch: int, entities: Iterable[Entity], unsent: Mapping[tuple[Kind, str], float]) -> None:
        """New content from the store; ``unsent`` is this process's spend not yet written there."""
        tables: dict[Kind, dict[str, Entity]] = {"key": {}, "user": {}, "team": {}}
        for entity in entities:
            entity.spend += unsent.get((entity.kind, entity.id), 0.0)
            tables[entity.kind][entity.id] = entity
        self.keys, self.users, self.teams = tables["key"], tables["user"], tables["team"]
        self._principals = {token: self._build(key) for token, key in self.keys.items()}
        self.epoch = epoch
        self.loaded = True

    def get(self, kind: Kind, id_: str) -> Entity | None:
        return self._table(kind).get(id_)

    def put(self, entity: Entity) -> None:
        self._table(entity.kind)[entity.id] = entity
        if entity.kind == "key":
            self._principals[entity.id] = self._build(entity)
        else:  # the keys of this user or team now point at the new object
            self._principals = {token: self._build(key) for token, key in self.keys.items()}

    def remove(self, kind: Kind, id_: str) -> None:
        self._table(kind).pop(id_, None)
        if kind == "key":
            self._principals.pop(id_, None)
        else:
            self._principals = {token: self._build(key) for token, key in self.keys.items()}

    def _build(self, key: Entity) -> Principal:
        user = self.users.get(key.user_id) if key.user_id else None
        team = self.teams.get(key.team_id) if key.team_id else None
        return Principal(key, user, team)

    def principal(self, token: str) -> Principal | None:
        """The caller of a key (its hash): one dict lookup, the same object until the content changes."""
        return self._principals.get(token)

    def entities(self) -> Iterable[Entity]:
        yield from self.keys.values()
        yield from self.users.values()
        yield from self.teams.values()
