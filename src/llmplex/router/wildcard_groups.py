"""Groups made on demand from wildcard deployments: a requested name that matches a pattern becomes a group.

The made deployments are the pattern's deployments with the requested name filling their ``*``; they
share their template's routing state (rpm/tpm windows, cooldowns, statistics), as LiteLLM's copies
share the template's ``model_info.id``. At most ``limit`` names are kept, oldest first out; a made
deployment's state alias and prepared call are dropped when the last request holding it is done
(a weak reference), so a stream of invented names cannot grow memory or reuse a stale call.
"""

from __future__ import annotations

import weakref
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import replace

from llmplex.exceptions import BadRequestError
from llmplex.router.deployments import Deployment
from llmplex.router.state import RouterState
from llmplex.router.support import check_support, unsupported_message
from llmplex.router.wildcards import WildcardTable

__all__ = ["WildcardGroups"]

DEFAULT_LIMIT = 4096


class WildcardGroups:
    def __init__(self, deployments: Iterable[Deployment], limit: int = DEFAULT_LIMIT) -> None:
        self.table: WildcardTable[Deployment] = WildcardTable(d for d in deployments if d.wildcard)
        self.limit = limit
        self._made: OrderedDict[str, list[Deployment]] = OrderedDict()

    def __bool__(self) -> bool:
        return bool(self.table)

    def group(
        self, name: str, state: RouterState, forget: Callable[[int], None]
    ) -> tuple[list[Deployment], list[str]] | None:
        """``(deployments for name, names dropped to stay under the limit)``, or None when no pattern matches.

        ``forget(id)``: called when a made deployment is gone, to drop what was cached under its id.
        """
        found = self.table.match(name)
        if found is None:
            return None
        _, calls = found
        group: list[Deployment] = []
        for template, model in calls:
            custom = template.params.get("custom_llm_provider")
            declared = template.model_info.get("mode")  # else inferred from the filled name (dall-e-3: images)
            support = check_support(model, custom if isinstance(custom, str) else None, declared)
            if support.problem is not None:
                raise BadRequestError(unsupported_message(support.problem, template.model_name), param="model")
            made = replace(template, model_name=name, model=model, provider=support.provider)
            state.alias(made, template)
            weakref.finalize(made, _gone, state, forget, id(made))
            group.append(made)
        self._made[name] = group
        dropped: list[str] = []
        while len(self._made) > self.limit:
            old, _ = self._made.popitem(last=False)
            dropped.append(old)
        return group, dropped


def _gone(state: RouterState, forget: Callable[[int], None], ident: int) -> None:
    state.unalias(ident)
    forget(ident)
