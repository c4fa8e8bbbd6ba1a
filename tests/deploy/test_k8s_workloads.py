"""What the Kubernetes base promises about the services, checked against the code: KEDA scales
each stage on the consumer groups the code really joins, pods outlive an item's deadline when
stopped, probes hit endpoints that exist on the ports the settings open, and every workload has
resources and a disruption budget."""

from __future__ import annotations

import asyncio
import importlib
import re
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from contracts.events import Stage
from contracts.topics import RUNS_CONTROL
from services.runtime.metrics import LIVENESS_PATH, serve_metrics
from services.runtime.service import CLOSE_DEADLINE_S
from services.runtime.settings import Settings
from tests.deploy.manifests import (
    COMPOSE,
    STAGES,
    compose_services,
    configmap_data,
    container_env,
    of_kind,
    one,
    pod_spec,
    settings_env_names,
)
from tests.ops.catalogue import label_problems, metric_names, samples, selector_labels
from tests.support.infra import free_port

DEFAULTS = {name: field.default for name, field in Settings.model_fields.items()}
# After the consumers close, a service gives the outbox this long to drain (service.py,
# _drain_outbox(deadline_s=5.0)); the relay then gets CLOSE_DEADLINE_S.
OUTBOX_DRAIN_S = 5.0


def _setting(name: str) -> float:
    """A setting's value in the base: the ConfigMap's, else the model's default."""
    env = {v: k for k, v in settings_env_names().items()}[name]
    value = configmap_data().get(env)
    return float(value) if value is not None else float(DEFAULTS[name])


def _grace(component: str) -> int:
    return int(pod_spec(one("Deployment", component))["terminationGracePeriodSeconds"])


def _compose_grace(service: str) -> float:
    text = str(compose_services()[service]["stop_grace_period"])
    assert re.fullmatch(r"\d+s", text), f"{service}: {text} (write seconds)"
    return float(text[:-1])


# --- Graceful termination --------------------------------------------------------------------


def _stage_shutdown_s(setting: Callable[[str], float]) -> float:
    """A stopping stage service: items in flight drain, then the consumers close (graceful
    timeout + CLOSE_DEADLINE_S), the outbox flushes, the relay stops (CLOSE_DEADLINE_S)."""
    return (
        setting("work_drain_timeout_s")
        + setting("kafka_graceful_timeout_s")
        + CLOSE_DEADLINE_S
        + OUTBOX_DRAIN_S
        + CLOSE_DEADLINE_S
    )


def _compose_setting(service: str) -> Callable[[str], float]:
    env = compose_services()[service].get("environment", {})
    names = {v: k for k, v in settings_env_names().items()}

    def setting(name: str) -> float:
        value = env.get(names[name])
        return float(value) if value is not None else float(DEFAULTS[name])

    return setting


@pytest.mark.parametrize("stage", STAGES)
def test_a_stopping_stage_lets_an_item_run_to_its_deadline_within_its_grace_period(
    stage: str,
) -> None:
    """The drain covers an item's deadline (a call cut short is paid twice), and the grace
    period covers the whole shutdown, in the base and in compose."""
    assert _setting("work_drain_timeout_s") >= _setting("work_item_deadline_s")
    assert _grace(stage) > _stage_shutdown_s(_setting)
    compose = _compose_setting(stage)
    assert compose("work_drain_timeout_s") >= compose("work_item_deadline_s")
    assert _compose_grace(stage) > _stage_shutdown_s(compose)


def _gateway_shutdown_s() -> float:
    """uvicorn drains requests (graceful timeout), then the service closes: consumers
    (graceful timeout + CLOSE_DEADLINE_S), outbox, relay (CLOSE_DEADLINE_S)."""
    graceful = _setting("kafka_graceful_timeout_s")
    return graceful + graceful + CLOSE_DEADLINE_S + OUTBOX_DRAIN_S + CLOSE_DEADLINE_S


def test_gateway_outlives_its_shutdown() -> None:
    assert _grace("gateway") > _gateway_shutdown_s()
    assert _compose_grace("gateway") > _gateway_shutdown_s()


# --- KEDA ------------------------------------------------------------------------------------


def _consumer_groups(settings: Settings, stage: Stage) -> set[tuple[str, str]]:
    """(group, topic) pairs the stage service subscribes with, as its code builds them: the
    service is wired as at start and the broker's subscriptions recorded."""
    from services.runtime.stage import StageApp

    module = importlib.import_module(f"services.{stage.value}.app")
    app = StageApp(settings, stage, [module.MIGRATIONS])
    recorded: set[tuple[str, str]] = set()
    subscribe = app.service.broker.subscriber

    def record(*topics: str, **options: Any) -> Any:
        for topic in topics:
            recorded.add((options["group_id"], topic))
        return subscribe(*topics, **options)

    app.service.broker.subscriber = record  # type: ignore[method-assign]
    try:
        module.build(app)
    finally:
        asyncio.run(app.service.engine.dispose())
        asyncio.run(app.service.fleet.close())
    return recorded


@pytest.fixture
def stage_settings(tmp_path: Path) -> Iterator[Any]:
    """Settings of a stage container as the base configures it (databases made local)."""

    def build(stage: str) -> Settings:
        (container,) = pod_spec(one("Deployment", stage))["containers"]
        env = container_env(container)
        names = settings_env_names()
        values = {names[k]: v for k, v in env.items() if k in names}
        values["database_url"] = f"sqlite+aiosqlite:///{tmp_path / stage}.db"
        values["fleet_database_url"] = f"sqlite+aiosqlite:///{tmp_path}/fleet.db"
        return Settings.model_validate(values)

    return build


@pytest.mark.parametrize("stage", STAGES)
def test_keda_scales_on_the_consumer_groups_the_code_joins(stage: str, stage_settings: Any) -> None:
    settings = stage_settings(stage)
    assert settings.service_name == stage
    subscribed = _consumer_groups(settings, Stage(stage))
    expected = {(g, t) for g, t in subscribed if t != settings.topic(RUNS_CONTROL.name)}
    scaled = one("ScaledObject", stage).doc["spec"]
    triggers = {
        (t["metadata"]["consumerGroup"], t["metadata"]["topic"])
        for t in scaled["triggers"]
        if t["type"] == "kafka"
    }
    assert triggers == expected


@pytest.mark.parametrize("stage", STAGES)
def test_keda_scaled_object_targets_its_deployment(stage: str) -> None:
    spec = one("ScaledObject", stage).doc["spec"]
    deployment = one("Deployment", stage)
    assert spec["scaleTargetRef"]["name"] == deployment.name
    assert spec.get("scaleTargetRef", {}).get("kind", "Deployment") == "Deployment"
    assert "replicas" not in deployment.doc["spec"], "the HPA KEDA makes owns the replicas"
    # Items wait in the database, which the lag does not show: never scale a stage to zero.
    assert spec["minReplicaCount"] >= 1
    assert spec["maxReplicaCount"] >= spec["minReplicaCount"]
    for trigger in _triggers(spec, "kafka"):
        metadata = trigger["metadata"]
        assert metadata["bootstrapServers"] == configmap_data()["CARDFLOW_KAFKA_BOOTSTRAP_SERVERS"]
        assert metadata["lagThreshold"].isdigit()
        assert int(metadata["lagThreshold"]) > 0
        # New groups start at the earliest offset in the code (broker.subscriber_options).
        assert metadata.get("offsetResetPolicy") == "earliest"


def _triggers(spec: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    return [t for t in spec["triggers"] if t["type"] == kind]


@pytest.mark.parametrize("stage", STAGES)
def test_keda_scales_on_the_stages_queue_depth_a_replica_per_work_concurrency(
    stage: str,
) -> None:
    """The lag does not show items a handler recorded: a Prometheus trigger on the stage's
    waiting and running items does, with metrics the code exports under these labels."""
    (trigger,) = _triggers(one("ScaledObject", stage).doc["spec"], "prometheus")
    metadata = trigger["metadata"]
    query = metadata["query"]
    assert metric_names(query) == {"cardflow_items_waiting", "cardflow_items_running"}
    assert not set(metric_names(query)) - set(samples())
    assert not label_problems(query)
    assert {label for _, label in selector_labels(query)} == {"stage"}
    assert set(re.findall(r'stage="([^"]*)"', query)) == {stage}
    # Every replica reports the same queue (one database): max, never sum.
    assert "max(cardflow_items_waiting" in query.replace(" ", "")
    assert trigger.get("metricType") == "AverageValue"
    assert float(metadata["threshold"]) == _setting("work_concurrency")


def test_every_stage_deployment_is_scaled() -> None:
    scaled = {m.doc["spec"]["scaleTargetRef"]["name"] for m in of_kind("ScaledObject")}
    stages = {m.name for m in of_kind("Deployment") if m.name != one("Deployment", "gateway").name}
    assert scaled == stages


# --- Probes, ports, resources, disruption budgets ----------------------------------------------


def _gateway_paths(tmp_path: Path) -> set[str]:
    from services.gateway.app import create_app

    settings = Settings(
        service_name="gateway",
        database_url=f"sqlite+aiosqlite:///{tmp_path}/gateway.db",
        fleet_database_url=f"sqlite+aiosqlite:///{tmp_path}/fleet.db",
    )
    app = create_app(settings)
    try:
        return {getattr(route, "path", "") for route in app.routes}
    finally:
        service = app.state.service
        asyncio.run(service.engine.dispose())
        asyncio.run(service.fleet.close())


def _probes(container: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        kind: container[kind]
        for kind in ("startupProbe", "livenessProbe", "readinessProbe")
        if kind in container
    }


def test_gateway_probes_hit_its_health_endpoints(tmp_path: Path) -> None:
    (container,) = pod_spec(one("Deployment", "gateway"))["containers"]
    probes = _probes(container)
    assert {"livenessProbe", "readinessProbe"} <= probes.keys()
    assert probes["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert probes["readinessProbe"]["httpGet"]["path"] == "/readyz"
    paths = _gateway_paths(tmp_path)
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    port = int(container_env(container).get("CARDFLOW_GATEWAY_PORT", DEFAULTS["gateway_port"]))
    for kind, probe in probes.items():
        assert probe["httpGet"]["path"] in paths, f"{kind}: no route {probe['httpGet']['path']}"
        assert ports[probe["httpGet"]["port"]] == port, f"{kind}: not the gateway's port"
    (service,) = of_kind("Service")
    assert ports[service.doc["spec"]["ports"][0]["targetPort"]] == port


@pytest.mark.parametrize("stage", STAGES)
def test_stage_probes_hit_the_metrics_server_it_opens(stage: str) -> None:
    """Startup and readiness: /metrics answers (the server starts once the service runs);
    liveness: /livez, which also fails while the event loop is stuck. Each path is asked of a
    real metrics server."""
    (container,) = pod_spec(one("Deployment", stage))["containers"]
    probes = _probes(container)
    assert {"startupProbe", "livenessProbe", "readinessProbe"} <= probes.keys()
    metrics_port = int(container_env(container)["CARDFLOW_METRICS_PORT"])
    assert metrics_port > 0, "0 turns the endpoint off"
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    for probe in probes.values():
        assert ports[probe["httpGet"]["port"]] == metrics_port
    assert probes["livenessProbe"]["httpGet"]["path"] == LIVENESS_PATH
    healthcheck = " ".join(compose_services()[stage]["healthcheck"]["test"])
    compose_path = re.search(rf"127\.0\.0\.1:{metrics_port}(/\w+)", healthcheck)
    assert compose_path, healthcheck
    paths = {p["httpGet"]["path"] for p in probes.values()} | {compose_path.group(1)}
    port = free_port()
    stop = serve_metrics(port, "127.0.0.1")
    try:
        for path in paths:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as answer:
                assert answer.status == 200, path
    finally:
        stop()
    annotations = one("Deployment", stage).doc["spec"]["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/port"] == str(metrics_port)
    compose_env = compose_services()[stage]["environment"]
    assert compose_env["CARDFLOW_METRICS_PORT"] == str(metrics_port)


def test_gateway_serves_metrics_on_its_own_port_only() -> None:
    """The gateway serves /metrics on gateway_port; a metrics port would open a second one."""
    (container,) = pod_spec(one("Deployment", "gateway"))["containers"]
    assert "CARDFLOW_METRICS_PORT" not in container_env(container)
    assert "CARDFLOW_METRICS_PORT" not in compose_services()["gateway"]["environment"]
    assert "CARDFLOW_METRICS_PORT" not in configmap_data()


@pytest.mark.parametrize("component", ["gateway", *STAGES, "migrate"])
def test_every_container_has_requests_and_limits(component: str) -> None:
    kind = "Job" if component == "migrate" else "Deployment"
    for container in pod_spec(one(kind, component))["containers"]:
        resources = container["resources"]
        for bound in ("requests", "limits"):
            assert {"cpu", "memory"} <= resources[bound].keys(), f"{container['name']}: {bound}"
        assert container["securityContext"]["readOnlyRootFilesystem"] is True


@pytest.mark.parametrize("component", ["gateway", *STAGES])
def test_every_deployment_has_a_disruption_budget(component: str) -> None:
    deployment = one("Deployment", component)
    budget = one("PodDisruptionBudget", component)
    selector = budget.doc["spec"]["selector"]["matchLabels"]
    labels = deployment.doc["spec"]["template"]["metadata"]["labels"]
    assert selector.items() <= labels.items()
    assert deployment.doc["spec"]["selector"]["matchLabels"] == selector


def test_migration_job_migrates_every_service() -> None:
    job = one("Job", "migrate")
    migrated = set()
    for container in pod_spec(job)["containers"]:
        env = container_env(container)
        spec = container["command"][-1]
        service = spec.removeprefix("services.").split(".")[0]
        assert env["CARDFLOW_SERVICE_NAME"] == service
        migrated.add(service)
    assert migrated == {"gateway", *STAGES}


def test_compose_stage_services_wait_for_their_dependencies() -> None:
    for name in ("gateway", *STAGES):
        depends = compose_services()[name]["depends_on"]
        for dependency in ("kafka", "postgres"):
            assert depends[dependency]["condition"] == "service_healthy", f"{name}"
        assert "healthcheck" in compose_services()[name]
    assert COMPOSE.exists()
