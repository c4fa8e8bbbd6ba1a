"""Reading what deploy/ and the Dockerfile declare, for the deployment tests.

Nothing here runs Docker or talks to a cluster: none exists where these tests run. The files
are parsed and their names (settings, modules, consumer groups, images) compared with what
the code defines.
"""

from __future__ import annotations

import functools
import re
import shlex
import tomllib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from services.runtime.settings import Settings

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
K8S = DEPLOY / "k8s"
COMPOSE = DEPLOY / "compose.yaml"
DOCKERFILE = REPO / "Dockerfile"
DOCKERIGNORE = REPO / ".dockerignore"
ENV_EXAMPLE = DEPLOY / ".env.example"
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())

STAGES = ("analysis", "epics", "stories", "subtasks")
SERVICES = ("gateway", *STAGES)

# The image the Dockerfile builds, as the manifests name it: cardflow:<project version>.
IMAGE = f"cardflow:{PYPROJECT['project']['version']}"

SETTING_VAR = re.compile(r"\bCARDFLOW_[A-Z0-9_]+\b")


def settings_env_names() -> dict[str, str]:
    """Environment variable -> Settings field, as ``python -m services.runtime.settings``
    derives them (the model's env prefix + the field name upper-cased)."""
    prefix = Settings.model_config.get("env_prefix", "")
    return {f"{prefix}{name}".upper(): name for name in Settings.model_fields}


def yaml_files() -> list[Path]:
    """Every YAML file under deploy/ (other engineers' dashboards and rules included)."""
    return sorted(p for p in DEPLOY.rglob("*") if p.suffix in (".yaml", ".yml") and p.is_file())


def load_all(path: Path) -> list[Any]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc is not None]


def kustomization() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    return loaded


@dataclass(frozen=True)
class Manifest:
    path: Path
    doc: dict[str, Any]

    @property
    def kind(self) -> str:
        return str(self.doc["kind"])

    @property
    def name(self) -> str:
        return str(self.doc["metadata"]["name"])

    def __str__(self) -> str:
        return f"{self.path.name}:{self.kind}/{self.name}"


def k8s_manifests() -> list[Manifest]:
    """Every resource of the Kustomize base, from the files its kustomization lists."""
    return list(_k8s_manifests())


@functools.cache
def _k8s_manifests() -> tuple[Manifest, ...]:
    found = []
    for resource in kustomization()["resources"]:
        path = K8S / resource
        found.extend(Manifest(path, doc) for doc in load_all(path))
    return tuple(found)


def of_kind(kind: str) -> list[Manifest]:
    return [m for m in k8s_manifests() if m.kind == kind]


def one(kind: str, component: str) -> Manifest:
    """The resource of ``kind`` for ``component`` (label app.kubernetes.io/component)."""
    matches = [
        m
        for m in of_kind(kind)
        if m.doc["metadata"].get("labels", {}).get("app.kubernetes.io/component") == component
    ]
    assert len(matches) == 1, f"expected one {kind} for {component}, found {len(matches)}"
    return matches[0]


def pod_spec(manifest: Manifest) -> dict[str, Any]:
    spec: dict[str, Any] = manifest.doc["spec"]["template"]["spec"]
    return spec


def configmap_data() -> dict[str, str]:
    (configmap,) = of_kind("ConfigMap")
    return dict(configmap.doc["data"])


# What a secretKeyRef stands for in tests: a value of the right shape, never a real secret.
SECRET_PLACEHOLDERS = {
    "database-url": "postgresql+asyncpg://cardflow:placeholder@postgres:5432/cardflow",
    "api-key": "placeholder-key",
    "password": "placeholder-password",
}


def secret_placeholder(key: str) -> str:
    for suffix, value in SECRET_PLACEHOLDERS.items():
        if key.endswith(suffix):
            return value
    raise AssertionError(f"no placeholder for a secret key named {key!r}")


def container_env(container: Mapping[str, Any]) -> dict[str, str]:
    """A k8s container's environment as the kubelet builds it: envFrom ConfigMaps, then env
    (secretKeyRef and fieldRef values replaced by placeholders)."""
    configmaps = {m.name: m.doc.get("data", {}) for m in of_kind("ConfigMap")}
    env: dict[str, str] = {}
    for source in container.get("envFrom", []):
        name = source["configMapRef"]["name"]
        assert name in configmaps, f"envFrom names a ConfigMap not in the base: {name}"
        env.update(configmaps[name])
    for item in container.get("env", []):
        if "value" in item:
            env[item["name"]] = str(item["value"])
        elif "secretKeyRef" in item["valueFrom"]:
            env[item["name"]] = secret_placeholder(item["valueFrom"]["secretKeyRef"]["key"])
        elif "fieldRef" in item["valueFrom"]:
            env[item["name"]] = "cardflow-pod-0"
        else:
            raise AssertionError(f"unexpected env source: {item}")
    return env


def k8s_containers() -> Iterator[tuple[Manifest, dict[str, Any]]]:
    for manifest in k8s_manifests():
        if manifest.kind in ("Deployment", "Job"):
            spec = pod_spec(manifest)
            for container in spec.get("initContainers", []) + spec["containers"]:
                yield manifest, container


def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())
    return loaded


def compose_services() -> dict[str, dict[str, Any]]:
    services: dict[str, dict[str, Any]] = compose()["services"]
    return services


_INTERPOLATION = re.compile(
    r"\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\}"
)


def interpolation_names(text: str) -> set[str]:
    return {m.group("name") for m in _INTERPOLATION.finditer(text)}


def interpolate(value: str, env: Mapping[str, str]) -> str:
    """Compose's ``${NAME}``, ``${NAME:-default}`` and ``${NAME:?error}`` (and the forms
    without the colon): what ``docker compose`` substitutes from deploy/.env."""

    def substitute(match: re.Match[str]) -> str:
        name, op, arg = match.group("name"), match.group("op"), match.group("arg")
        value = env.get(name)
        empty = value is None or (op is not None and op.startswith(":") and value == "")
        if op in (":-", "-") and empty:
            return arg or ""
        if op in (":?", "?") and empty:
            raise KeyError(f"{name}: {arg}")
        return value or ""

    return _INTERPOLATION.sub(substitute, value.replace("$$", "\0")).replace("\0", "$")


def env_example() -> dict[str, str]:
    """deploy/.env.example's assignments (commented-out lines left out)."""
    values = {}
    for line in ENV_EXAMPLE.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            name, _, value = line.partition("=")
            values[name.strip()] = value.strip()
    return values


def compose_env(service: Mapping[str, Any], env: Mapping[str, str]) -> dict[str, str]:
    environment = service.get("environment", {})
    assert isinstance(environment, dict), "environment as a mapping, please"
    return {k: interpolate(str(v), env) for k, v in environment.items()}


@dataclass(frozen=True)
class Instruction:
    keyword: str
    args: str


def dockerfile_instructions() -> list[Instruction]:
    """The Dockerfile's instructions, continuation lines joined, comments dropped."""
    instructions: list[Instruction] = []
    pending = ""
    for raw in DOCKERFILE.read_text().splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        line = pending + line
        pending = ""
        keyword, _, args = line.partition(" ")
        instructions.append(Instruction(keyword.upper(), args.strip()))
    return instructions


def dockerfile_env() -> dict[str, str]:
    env: dict[str, str] = {}
    for instruction in dockerfile_instructions():
        if instruction.keyword == "ENV":
            for token in shlex.split(instruction.args):
                name, _, value = token.partition("=")
                env[name] = value
    return env


def python_modules(command: list[str] | str) -> list[str]:
    """The modules a command runs with ``python -m``."""
    argv = shlex.split(command) if isinstance(command, str) else [str(a) for a in command]
    return [argv[i + 1] for i, arg in enumerate(argv[:-1]) if arg == "-m"]


def keda_prometheus_queries() -> dict[str, str]:
    """The PromQL of every KEDA Prometheus trigger, by ``<ScaledObject>/<trigger>``."""
    return {
        f"{m.name}/{t.get('name', '?')}": t["metadata"]["query"]
        for m in of_kind("ScaledObject")
        for t in m.doc["spec"]["triggers"]
        if t["type"] == "prometheus"
    }
