"""LiteLLM config.yaml loading: accepted verbatim, strict types, errors that name the place, one warning."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from llmplex.exceptions import ConfigError
from llmplex.proxy import ProxyConfig, load_config
from llmplex.proxy.demo import demo_config_path

LITELLM_CONFIG = """\
model_list:
  - model_name: gpt-4o
    litellm_params:
      model: azure/gpt-4o-eu
      api_base: https://eu.example.invalid
      api_key: "os.environ/AZURE_API_KEY_EU"
      api_version: "2024-06-01"
      rpm: 6
      tpm: 1000
      temperature: 0.2
    model_info:
      id: eu-1
      mode: chat
  - model_name: gpt-4o
    litellm_params:
      model: azure/gpt-4o-ca
      api_base: https://ca.example.invalid
      api_key: os.environ/AZURE_API_KEY_CA
      weight: 2
      timeout: 30
      tags: ["canada"]
  - model_name: groq-llama
    litellm_params:
      model: groq/llama3-8b-8192
  - model_name: "*"
    litellm_params:
      model: "*"
litellm_settings:
  drop_params: true
  num_retries: 3
  request_timeout: 10
  success_callback: ["langfuse"]
router_settings:
  routing_strategy: least-busy
  model_group_alias: {"gpt-4": "gpt-4o"}
  fallbacks: [{"gpt-4o": ["groq-llama"]}]
  allowed_fails: 1
  cooldown_time: 30
  redis_host: localhost
general_settings:
  master_key: sk-1234
  database_url: postgres://nowhere
environment_variables:
  AZURE_API_KEY_CA: ca-secret
"""


def test_litellm_config_loads_verbatim() -> None:
    config = ProxyConfig.from_yaml(LITELLM_CONFIG, environ={"AZURE_API_KEY_EU": "eu-secret"})
    eu, ca, groq, anything = config.deployments
    assert (eu.model_name, eu.model, eu.model_id, eu.provider) == ("gpt-4o", "azure/gpt-4o-eu", "eu-1", "azure")
    assert eu.params["api_key"] == "eu-secret"
    assert eu.params["api_version"] == "2024-06-01"
    assert eu.params["temperature"] == 0.2  # provider extras pass through
    assert (eu.rpm, eu.tpm) == (6, 1000)
    assert "rpm" not in eu.params and "tags" not in ca.params
    assert ca.params["api_key"] == "ca-secret"  # from environment_variables
    assert ca.params["timeout"] == 30.0 and ca.weight == 2.0
    assert len(ca.model_id) == 16 and groq.provider == "groq"
    assert anything.wildcard and anything.provider == ""  # model "*": the provider comes from each requested name
    assert config.master_key == "sk-1234"
    assert config.database_url == "postgres://nowhere"
    assert config.drop_params is True and config.request_timeout == 10
    router = config.router
    assert router.routing_strategy == "least-busy"
    assert router.num_retries == 3  # from litellm_settings
    assert router.fallbacks == {"gpt-4o": ("groq-llama",)}
    assert (router.allowed_fails, router.cooldown_time) == (1, 30.0)
    assert config.model_names() == ["gpt-4o", "groq-llama", "*", "gpt-4"]
    assert config.environ["AZURE_API_KEY_CA"] == "ca-secret"
    assert "AZURE_API_KEY_CA" not in os.environ  # an overlay, never a mutation
    assert "secret" not in repr(config) + repr(eu)


def test_one_warning_lists_every_ignored_key_with_its_line() -> None:
    config = ProxyConfig.from_yaml(LITELLM_CONFIG, environ={"AZURE_API_KEY_EU": "x"})
    (warning,) = [w for w in config.warnings if "llmplex ignores these keys" in w]
    for expected in (
        "model_list[1].litellm_params.tags (line 21)",
        "litellm_settings.success_callback (line 32)",
    ):
        assert expected in warning
    assert "redis_host" not in warning  # understood: shared router state (tests/proxy/test_redis_state.py)
    assert "database_url" not in warning  # understood: the store (tests/store/)
    # understood (tests/proxy/test_dropin_config.py)
    assert "model_info.mode" not in warning and "wildcard" not in warning
    assert warning.index("(line 21)") < warning.index("(line 32)")  # in file order
    (keyless,) = [w for w in config.warnings if "no API key" in w]
    assert "groq-llama (groq/llama3-8b-8192): set GROQ_API_KEY" in keyless  # a first failed request, said up front


def test_clean_config_has_no_warning_and_litellm_master_key_env() -> None:
    text = "model_list:\n  - model_name: a\n    litellm_params: {model: openai/a, api_key: k}\n"
    config = ProxyConfig.from_yaml(text, environ={"LITELLM_MASTER_KEY": "sk-env"})
    assert config.warnings == ()
    assert config.master_key == "sk-env"


def test_environment_values_are_coerced_for_typed_keys() -> None:
    text = "model_list:\n  - model_name: a\n    litellm_params: {model: openai/a, rpm: os.environ/RPM}\n"
    assert ProxyConfig.from_yaml(text, environ={"RPM": "7"}).deployments[0].rpm == 7


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("model_list: [\n", "invalid YAML at line 2"),
        ("model_list:\n  - litellm_params: {model: openai/x}\n", "model_list[0].model_name (line 2): is required"),
        ("model_list:\n  - model_name: a\n", "model_list[0].litellm_params (line 2): is required"),
        (
            "model_list:\n  - model_name: a\n    litellm_params:\n      model: openai/x\n      rpm: six\n",
            "model_list[0].litellm_params.rpm (line 5): must be an integer",
        ),
        (
            "model_list:\n  - model_name: a\n    litellm_params: {model: openai/x}\nrouter_settings:\n"
            "  routing_strategy: fastest\n",
            "router_settings.routing_strategy (line 5): unknown strategy 'fastest'",
        ),
        (
            "model_list:\n  - model_name: a\n    litellm_params: {model: openai/x}\nrouter_settings:\n"
            "  fallbacks: [{a: [b]}]\n",
            "'b' is not a model_name",
        ),
        ("model_list: []\n", "at least one model"),
        ("model_list: {a: 1}\n", "model_list (line 1): must be a list"),
        (
            "model_list:\n  - model_name: a\n    litellm_params: {model: openai/x}\nlitellm_settings:\n"
            "  drop_params: 'yes'\n",
            "litellm_settings.drop_params (line 5): must be true or false",
        ),
    ],
)
def test_broken_config_names_the_place(text: str, expected: str) -> None:
    with pytest.raises(ConfigError) as info:
        ProxyConfig.from_yaml(text, environ={}, source="bad.yaml")
    assert str(info.value).startswith("bad.yaml: ")
    assert expected in str(info.value)


def test_load_config_reads_files(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text("model_list:\n  - model_name: a\n    litellm_params: {model: openai/x}\n")
    config = load_config(path, environ={})
    assert config.source == str(path.resolve())
    with pytest.raises(ConfigError, match="cannot read config file"):
        load_config(tmp_path / "missing.yaml", environ={})


def _run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "llmplex", *args],
        capture_output=True,
        text=True,
        timeout=30,
        env={**os.environ, **(env or {})},
        check=False,
    )


def test_cli_exits_non_zero_on_a_broken_config(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("model_list:\n  - model_name: a\n    litellm_params:\n      model: openai/x\n      rpm: six\n")
    result = _run_cli("--config", str(bad), "--port", "0")
    assert result.returncode == 2
    assert "model_list[0].litellm_params.rpm (line 5)" in result.stderr
    assert "Traceback" not in result.stderr


def test_cli_refuses_public_bind_without_master_key(tmp_path: Path) -> None:
    config = tmp_path / "open.yaml"
    config.write_text("model_list:\n  - model_name: a\n    litellm_params: {model: openai/x, api_key: k}\n")
    result = _run_cli("--config", str(config), "--host", "0.0.0.0", "--port", "0", env={"LITELLM_MASTER_KEY": ""})
    assert result.returncode == 2
    assert "--allow-unauthenticated" in result.stderr


def test_demo_config_is_packaged_unchanged() -> None:
    examples = Path(__file__).resolve().parents[2] / "examples" / "demo.yaml"
    assert demo_config_path().read_text() == examples.read_text()
    text = examples.read_text()
    config = ProxyConfig.from_yaml(
        text,
        environ={"LLMPLEX_EMULATOR_URL": "http://127.0.0.1:1", "LLMPLEX_EMULATOR_OPENAI_BASE": "http://127.0.0.1:1/v1"},
    )
    assert config.start_emulator and config.warnings == ()


SECRET = "sk-live-Zq8Yv3Lm2Tx9"
REF = "os.environ/LLMPLEX_T"


@pytest.mark.parametrize(
    ("path", "setting"),
    [
        ("model_list[0].litellm_params.rpm", {"model_list": [{"litellm_params": {"rpm": REF}}]}),
        ("router_settings.routing_strategy", {"router_settings": {"routing_strategy": REF}}),
        ("router_settings.num_retries", {"router_settings": {"num_retries": REF}}),
        ("litellm_settings.drop_params", {"litellm_settings": {"drop_params": REF}}),
        ("router_settings.model_group_alias.x", {"router_settings": {"model_group_alias": {"x": REF}}}),
        ("router_settings.fallbacks[0].a", {"router_settings": {"fallbacks": [{"a": [REF]}]}}),
        ("litellm_settings.request_timeout", {"litellm_settings": {"request_timeout": REF}}),
    ],
    ids=lambda v: v if isinstance(v, str) else None,
)
@pytest.mark.parametrize("secret", [SECRET, "-5"])
def test_config_errors_never_print_values_read_from_the_environment(
    path: str, setting: dict[str, Any], secret: str
) -> None:
    """A wrong value from os.environ/VAR is named as "the value of VAR": it may be a secret (or part of one)."""
    data: dict[str, Any] = {"model_list": [{"model_name": "a", "litellm_params": {"model": "openai/a"}}]}
    for section, value in setting.items():
        if section == "model_list":
            data["model_list"][0]["litellm_params"].update(value[0]["litellm_params"])
        else:
            data[section] = value
    with pytest.raises(ConfigError) as caught:
        ProxyConfig.from_dict(data, environ={"LLMPLEX_T": secret})
    message = str(caught.value)
    assert path.split("[")[0].split(".")[0] in message, message
    assert secret not in message and secret[:8] not in message, message
    assert "the value of LLMPLEX_T" in message, message


@pytest.mark.parametrize("secret", [SECRET, "-5"])
def test_a_model_read_from_the_environment_is_never_printed_when_disabled(secret: str) -> None:
    """An unknown model from os.environ/VAR disables its deployment (a LiteLLM config starts); the warning and
    the 400 name it as "the value of VAR"."""
    data = {"model_list": [{"model_name": "a", "litellm_params": {"model": REF}}]}
    config = ProxyConfig.from_dict(data, environ={"LLMPLEX_T": secret})
    (deployment,) = config.deployments
    assert deployment.problem == "the value of LLMPLEX_T as a model"
    warnings = "\n".join(config.warnings)
    assert "the value of LLMPLEX_T" in warnings and secret not in warnings and secret[:8] not in warnings
