"""Every setting the deployment files name is one the code reads, every value they give it is
one the settings model accepts, and secrets are only ever referenced, never written down."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from services.runtime.settings import Settings
from tests.deploy.manifests import (
    COMPOSE,
    DEPLOY,
    DOCKERFILE,
    ENV_EXAMPLE,
    K8S,
    REPO,
    SETTING_VAR,
    compose_env,
    compose_services,
    configmap_data,
    container_env,
    dockerfile_env,
    env_example,
    interpolation_names,
    k8s_containers,
    settings_env_names,
)

FILES = [DOCKERFILE, COMPOSE, ENV_EXAMPLE, *sorted(K8S.glob("*.yaml"))]

# Settings whose values are secrets: set by reference only (a Secret, or ${...} from .env).
SECRET_SETTINGS = {
    "CARDFLOW_DATABASE_URL",
    "CARDFLOW_FLEET_DATABASE_URL",
    "CARDFLOW_LLM_API_KEY",
    "CARDFLOW_BOOTSTRAP_API_KEY",
}


@pytest.mark.parametrize("path", FILES, ids=lambda p: str(p.relative_to(REPO)))
def test_every_cardflow_variable_named_is_a_setting(path: Path) -> None:
    """Comments included: a comment naming a setting that does not exist misleads as well."""
    known = settings_env_names()
    unknown = sorted(set(SETTING_VAR.findall(path.read_text())) - known.keys())
    assert not unknown, f"{path.name} names variables no Settings field reads: {unknown}"


def test_settings_env_names_follow_the_model() -> None:
    names = settings_env_names()
    assert names["CARDFLOW_WORK_ITEM_DEADLINE_S"] == "work_item_deadline_s"
    assert len(names) == len(Settings.model_fields)


def _settings_from(env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Settings:
    for name in list(os.environ):
        if name.startswith("CARDFLOW_"):
            monkeypatch.delenv(name)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return Settings()


@pytest.mark.parametrize(
    ("manifest", "container"),
    list(k8s_containers()),
    ids=[f"{m}:{c['name']}" for m, c in k8s_containers()],
)
def test_k8s_container_settings_are_valid(
    manifest: object, container: dict[str, object], monkeypatch: pytest.MonkeyPatch
) -> None:
    env = container_env(container)  # type: ignore[arg-type]
    settings = _settings_from(env, monkeypatch)
    assert settings.database_url
    assert settings.database_url.startswith("postgresql+asyncpg://")
    assert settings.fleet_database_url, "every service shares the fleet database"
    assert settings.kafka_bootstrap_servers == configmap_data()["CARDFLOW_KAFKA_BOOTSTRAP_SERVERS"]


def test_k8s_secrets_are_referenced_never_written() -> None:
    assert not SECRET_SETTINGS & configmap_data().keys()
    for manifest, container in k8s_containers():
        for item in container.get("env", []):
            if item["name"] in SECRET_SETTINGS:
                assert "secretKeyRef" in item.get("valueFrom", {}), (
                    f"{manifest}:{container['name']} sets {item['name']} without a Secret"
                )


def test_k8s_llm_is_offline_unless_configured() -> None:
    assert configmap_data().get("CARDFLOW_LLM_BASE_URL", "") == ""


def _compose_env_values() -> dict[str, str]:
    """deploy/.env as a user fills it from the example: the required values set."""
    values = env_example()
    values.update(POSTGRES_PASSWORD="pw-for-tests", GRAFANA_ADMIN_PASSWORD="pw-for-tests")
    return values


@pytest.mark.parametrize(
    "name",
    [n for n, s in compose_services().items() if str(s.get("image", "")).startswith("cardflow:")],
)
def test_compose_service_settings_are_valid(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    env = compose_env(compose_services()[name], _compose_env_values())
    settings = _settings_from(env, monkeypatch)
    assert settings.database_url
    assert settings.database_url.startswith("postgresql+asyncpg://")
    assert settings.fleet_database_url
    assert not settings.llm_base_url, "offline LLM by default"


def test_compose_refuses_to_start_without_the_passwords() -> None:
    service = compose_services()["gateway"]
    values = env_example()
    with pytest.raises(KeyError, match="POSTGRES_PASSWORD"):
        compose_env(service, values)


def test_compose_secrets_come_from_the_env_file() -> None:
    for name, service in compose_services().items():
        for variable, value in service.get("environment", {}).items():
            if variable in SECRET_SETTINGS | {"POSTGRES_PASSWORD", "GF_SECURITY_ADMIN_PASSWORD"}:
                text = str(value)
                if variable.endswith("DATABASE_URL"):
                    assert "${POSTGRES_PASSWORD" in text, f"{name}: {variable} password literal"
                else:
                    assert re.fullmatch(r"\$\{[^}]+\}", text), (
                        f"{name}: {variable} must be a ${{...}} reference"
                    )


def test_compose_references_are_documented_in_the_env_example() -> None:
    """Every ${NAME} compose.yaml interpolates is in deploy/.env.example, which says what
    it is; and git ignores the real deploy/.env."""
    example = ENV_EXAMPLE.read_text()
    for name in sorted(interpolation_names(COMPOSE.read_text())):
        assert f"{name}=" in example, f"{name} is not in deploy/.env.example"
    assert ".env" in (DEPLOY / ".gitignore").read_text().split()


def test_dockerfile_settings_are_valid(monkeypatch: pytest.MonkeyPatch) -> None:
    env = {k: v for k, v in dockerfile_env().items() if k.startswith("CARDFLOW_")}
    assert env, "the image sets its container defaults"
    settings = _settings_from(env, monkeypatch)
    assert settings.gateway_host == "0.0.0.0", "a container's gateway listens on all interfaces"


def test_operations_doc_names_only_real_variables() -> None:
    """docs/operations.md: settings, the command line's own CARDFLOW_URL / CARDFLOW_API_KEY,
    or a knob of the local stack runner (deploy/local/stack.py reads it)."""
    stack_runner = (REPO / "deploy" / "local" / "stack.py").read_text()
    text = (REPO / "docs" / "operations.md").read_text()
    cli = {"CARDFLOW_URL", "CARDFLOW_API_KEY"} | {
        name for name in SETTING_VAR.findall(text) if f'"{name}"' in stack_runner
    }
    unknown = sorted(set(SETTING_VAR.findall(text)) - settings_env_names().keys() - cli)
    assert not unknown, f"docs/operations.md names variables nothing reads: {unknown}"
