"""deploy/compose.yaml: what `docker compose up` would start is whole (no Docker engine here to
start it): every service, the databases its URLs name, the files it mounts."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from tests.deploy.manifests import (
    DEPLOY,
    IMAGE,
    STAGES,
    compose,
    compose_env,
    compose_services,
    env_example,
    python_modules,
)

# Written with the dashboards and alerts (issue 7's other half); compose only mounts them.
OBSERVABILITY = ("prometheus", "grafana")


def _env() -> dict[str, str]:
    values = env_example()
    values.update(POSTGRES_PASSWORD="pw", GRAFANA_ADMIN_PASSWORD="pw")
    return values


def test_compose_has_the_stack() -> None:
    services = compose_services()
    assert {"kafka", "postgres", "gateway", *STAGES, "prometheus", "grafana"} <= services.keys()
    for name in ("gateway", *STAGES):
        assert services[name]["image"] == IMAGE
        assert python_modules(services[name]["command"]) == [f"services.{name}"]


def test_kafka_is_a_single_kraft_node() -> None:
    kafka = compose_services()["kafka"]["environment"]
    assert kafka["KAFKA_PROCESS_ROLES"] == "broker,controller"
    advertised = kafka["KAFKA_ADVERTISED_LISTENERS"].split(",")
    env = compose_env(compose_services()["gateway"], _env())
    assert f"PLAINTEXT://{env['CARDFLOW_KAFKA_BOOTSTRAP_SERVERS']}" in advertised
    # Transactions (the outbox relay) need these on a single broker.
    assert kafka["KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR"] == "1"
    assert kafka["KAFKA_TRANSACTION_STATE_LOG_MIN_ISR"] == "1"
    assert kafka["KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR"] == "1"


def test_every_database_a_service_names_is_created() -> None:
    """Each service its own database, plus the fleet's; the init script creates them all
    (the database named by POSTGRES_DB exists anyway)."""
    init = (DEPLOY / "postgres" / "init-databases.sql").read_text()
    created = set(re.findall(r"CREATE DATABASE (\w+);", init))
    created.add(compose_services()["postgres"]["environment"]["POSTGRES_DB"])
    named = set()
    for name in ("gateway", *STAGES):
        env = compose_env(compose_services()[name], _env())
        for variable in ("CARDFLOW_DATABASE_URL", "CARDFLOW_FLEET_DATABASE_URL"):
            url = make_url(env[variable])
            assert url.host == "postgres"
            assert url.username == compose_services()["postgres"]["environment"]["POSTGRES_USER"]
            named.add(url.database)
    assert named <= created
    own = {make_url(compose_env(compose_services()[n], _env())["CARDFLOW_DATABASE_URL"]).database
           for n in ("gateway", *STAGES)}  # fmt: skip
    assert len(own) == len(STAGES) + 1, "no two services share a database"


def _bind_mounts() -> list[tuple[str, Path, str]]:
    mounts = []
    for name, service in compose_services().items():
        for volume in service.get("volumes", []):
            source, target = str(volume).split(":")[:2]
            if source.startswith("."):
                mounts.append((name, (DEPLOY / source).resolve(), target))
    return mounts


@pytest.mark.parametrize(
    ("service", "source", "target"), _bind_mounts(), ids=[f"{s}:{t}" for s, _, t in _bind_mounts()]
)
def test_bind_mounted_files_exist(service: str, source: Path, target: str) -> None:
    assert source.is_relative_to(DEPLOY), f"{service} mounts {source}, outside deploy/"
    if not source.exists() and service in OBSERVABILITY:
        pytest.skip(f"{source.relative_to(DEPLOY)} comes with the dashboards and alerts")
    assert source.exists(), f"{service} mounts {source}, which does not exist"


def test_observability_mounts_are_the_agreed_paths() -> None:
    mounts = {(s, str(p.relative_to(DEPLOY)), t) for s, p, t in _bind_mounts()}
    assert ("prometheus", "prometheus/prometheus.yml", "/etc/prometheus/prometheus.yml") in mounts
    assert ("prometheus", "prometheus/rules", "/etc/prometheus/rules") in mounts
    assert ("grafana", "grafana/provisioning", "/etc/grafana/provisioning") in mounts
    assert ("grafana", "grafana/dashboards", "/var/lib/grafana/dashboards") in mounts


def test_named_volumes_are_declared() -> None:
    declared = set(compose().get("volumes", {}))
    for service in compose_services().values():
        for volume in service.get("volumes", []):
            source = str(volume).split(":")[0]
            if not source.startswith((".", "/")):
                assert source in declared


def test_published_ports_are_on_loopback_only() -> None:
    for name, service in compose_services().items():
        for port in service.get("ports", []):
            assert str(port).startswith("127.0.0.1:"), f"{name} publishes {port} on every interface"
