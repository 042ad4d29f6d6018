"""The declared public surface, sync/async parity, and the layering rules (checked on the source with ast)."""

from __future__ import annotations

import ast
import inspect
import types
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

import llmplex
from llmplex import _api
from llmplex.batches import api as batches_api

SRC = Path(llmplex.__file__).parent
# providers/ modules that are not adapters: the registry, the protocol, the model table
NON_ADAPTER_PROVIDER_MODULES = {
    "llmplex.providers",
    "llmplex.providers.base",
    "llmplex.providers.catalog",
    "llmplex.providers.capabilities",
    "llmplex.providers.embedding_base",
}


def test_all_is_sorted_and_unique() -> None:
    names = list(llmplex.__all__)
    assert len(names) == len(set(names))
    # classes first, then the rest, each case-insensitively sorted
    assert names == sorted(names, key=lambda n: (not n[:1].isupper(), n.lower()))


def test_all_matches_the_exports() -> None:
    for name in llmplex.__all__:
        assert hasattr(llmplex, name), name
    public = {
        name
        for name, value in vars(llmplex).items()
        if not name.startswith("_") and not isinstance(value, types.ModuleType)
    }
    assert public == set(llmplex.__all__) - {"__version__"}


def test_exported_objects_come_from_llmplex() -> None:
    for name in llmplex.__all__:
        value = getattr(llmplex, name)
        if name != "__version__":
            assert value.__module__.startswith("llmplex."), name


SYNC_FUNCTIONS = [name for name in _api.__all__ if not name.startswith("a")]


def async_name(name: str) -> str:
    return "aiter_" + name[len("iter_") :] if name.startswith("iter_") else "a" + name


def test_every_module_function_has_a_sync_async_pair() -> None:
    names = set(_api.__all__)
    assert len(SYNC_FUNCTIONS) * 2 == len(names)
    for name in SYNC_FUNCTIONS:
        assert async_name(name) in names, name


@pytest.mark.parametrize("name", SYNC_FUNCTIONS)
def test_pair_signatures_match(name: str) -> None:
    sync_sig = inspect.signature(getattr(llmplex, name))
    async_sig = inspect.signature(getattr(llmplex, async_name(name)))
    assert list(sync_sig.parameters.values()) == list(async_sig.parameters.values())


@pytest.mark.parametrize(
    "method",
    [
        "completion",
        "batch_completion",
        "iter_batch_completion",
        "batch_completion_models",
        "batch_completion_models_all_responses",
        "embedding",
        "text_completion",
    ],
)
def test_client_methods_match_async_client(method: str) -> None:
    sync_sig = inspect.signature(getattr(llmplex.Client, method))
    async_sig = inspect.signature(getattr(llmplex.AsyncClient, method))
    assert list(sync_sig.parameters.values()) == list(async_sig.parameters.values())
    module_sig = inspect.signature(getattr(llmplex, method))
    assert list(module_sig.parameters.values()) == list(sync_sig.parameters.values())[1:]  # minus self


def test_client_pairs_close() -> None:
    assert inspect.iscoroutinefunction(llmplex.AsyncClient.aclose)
    assert not inspect.iscoroutinefunction(llmplex.Client.close)


# --- layering ----------------------------------------------------------------------------------------


def module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports_of(path: Path, name: str | None = None) -> Iterator[tuple[str, int]]:
    """Every module a file imports (relative imports resolved), with its line, at any depth."""
    name = name or module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, node.lineno
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                target = ".".join([*base, node.module] if node.module else base)
            else:
                target = node.module or ""
            yield target, node.lineno
            for alias in node.names:  # `from llmplex.providers import anthropic` imports a module too
                yield f"{target}.{alias.name}", node.lineno


def source_files(*parts: str) -> list[Path]:
    return sorted(SRC.joinpath(*parts).rglob("*.py"))


def is_module(target: str, name: str) -> bool:
    return target == name or target.startswith(name + ".")


def is_adapter_module(target: str) -> bool:
    """``llmplex.providers.<module>...`` where <module> exists and is not the registry, base or catalog."""
    if not target.startswith("llmplex.providers."):
        return False
    first = target[len("llmplex.providers.") :].split(".", 1)[0]
    if f"llmplex.providers.{first}" in NON_ADAPTER_PROVIDER_MODULES:
        return False
    return (SRC / "providers" / f"{first}.py").exists() or (SRC / "providers" / first).is_dir()


def violations(files: list[Path], forbidden: Callable[[str], bool]) -> list[str]:
    return [
        f"{path.relative_to(SRC)}:{line} imports {target}"
        for path in files
        for target, line in imports_of(path)
        if forbidden(target)
    ]


def test_the_checker_sees_every_import_form(tmp_path: Path) -> None:
    # if the checker missed a form, the rules below would pass while proving nothing
    probe = tmp_path / "probe.py"
    probe.write_text(
        "import aiohttp.web\n"
        "from ..providers import anthropic\n"
        "from ..providers.openai_compat import OpenAIAdapter\n"
        "from llmplex.providers import get_adapter\n"
        "def f():\n    from . import errors\n"
    )
    found = {target for target, _ in imports_of(probe, "llmplex.proxy.probe")}
    assert "aiohttp.web" in found
    assert "llmplex.providers.anthropic" in found
    assert "llmplex.providers.openai_compat" in found
    assert "llmplex.proxy.errors" in found
    assert [t for t in found if is_adapter_module(t)] and not is_adapter_module("llmplex.providers.get_adapter")
    assert not is_adapter_module("llmplex.providers.base")


def test_aiohttp_only_in_transport() -> None:
    # _body_read is the transport's body reading, split off: it reads aiohttp responses _transport hands it
    files = [path for path in source_files() if path.name not in ("_transport.py", "_body_read.py")]
    assert violations(files, lambda t: is_module(t, "aiohttp")) == []


def test_proxy_uses_no_adapter_module_and_no_aiohttp() -> None:
    files = source_files("proxy")
    assert files, "the proxy package exists"
    assert violations(files, lambda t: is_adapter_module(t) or is_module(t, "aiohttp")) == []


def test_emulator_imports_nothing_from_llmplex() -> None:
    files = source_files("emulator")
    assert files, "the emulator package exists"
    assert violations(files, lambda t: is_module(t, "llmplex") and not is_module(t, "llmplex.emulator")) == []


def test_router_imports_nothing_from_the_proxy() -> None:
    files = source_files("router")
    assert files, "the router package exists"
    assert violations(files, lambda t: is_module(t, "llmplex.proxy")) == []


# --- file and batch functions (llmplex.batches.api) -------------------------------------------------

BATCH_SYNC_FUNCTIONS = [name for name in batches_api.__all__ if name[:1].islower() and not name.startswith("a")]


def test_every_batch_function_has_an_async_twin() -> None:
    lower = {name for name in batches_api.__all__ if name[:1].islower()}
    assert len(BATCH_SYNC_FUNCTIONS) * 2 == len(lower)
    for name in BATCH_SYNC_FUNCTIONS:
        assert "a" + name in lower, name
        assert name in llmplex.__all__ and "a" + name in llmplex.__all__, name


@pytest.mark.parametrize("name", BATCH_SYNC_FUNCTIONS)
def test_batch_pair_signatures_match(name: str) -> None:
    sync_sig = inspect.signature(getattr(llmplex, name))
    async_sig = inspect.signature(getattr(llmplex, "a" + name))
    assert list(sync_sig.parameters.values()) == list(async_sig.parameters.values())
    assert inspect.iscoroutinefunction(getattr(llmplex, "a" + name))
