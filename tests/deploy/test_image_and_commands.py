"""The image and what runs in it: every command names a real entry point, every image is the
one the Dockerfile builds or a pinned official one, and the Dockerfile installs exactly the
locked runtime and the whole package.

No Docker engine here: the Dockerfile's steps are checked by running their parts (the lock
filter, the wheel build) outside of it.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import re
import shlex
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from packaging.markers import default_environment
from packaging.requirements import Requirement

from tests.deploy.manifests import (
    DOCKERFILE,
    DOCKERIGNORE,
    IMAGE,
    PYPROJECT,
    REPO,
    SERVICES,
    compose_services,
    dockerfile_instructions,
    k8s_containers,
    python_modules,
)

sys.path.insert(0, str(REPO / "deploy" / "docker"))
import runtime_lock

# Official images the deployment may use, each pinned to a version (never `latest`).
OFFICIAL = {
    "apache/kafka": r"\d+\.\d+\.\d+",
    "postgres": r"\d+\.\d+(-[a-z]+)?",
    "prom/prometheus": r"v\d+\.\d+\.\d+",
    "grafana/grafana": r"\d+\.\d+\.\d+",
    "python": r"3\.1[1-9]\.\d+-slim(-[a-z]+)?",
}


def _commands() -> list[tuple[str, list[str]]]:
    found: list[tuple[str, list[str]]] = []
    for manifest, container in k8s_containers():
        found.append((f"{manifest}:{container['name']}", container["command"]))
    for name, service in compose_services().items():
        if "command" in service and str(service.get("image", "")).startswith("cardflow:"):
            found.append((f"compose:{name}", service["command"]))
    for instruction in dockerfile_instructions():
        if instruction.keyword in ("CMD", "ENTRYPOINT"):
            found.append((f"Dockerfile {instruction.keyword}", _exec_form(instruction.args)))
    return found


def _exec_form(args: str) -> list[str]:
    import json

    parsed = json.loads(args)
    assert isinstance(parsed, list), "CMD and ENTRYPOINT in exec form (signals reach Python)"
    return [str(a) for a in parsed]


COMMANDS = _commands()


def test_every_service_runs_somewhere() -> None:
    run = {m for _, command in COMMANDS for m in python_modules(command)}
    assert {f"services.{name}" for name in SERVICES} <= run


@pytest.mark.parametrize(("where", "command"), COMMANDS, ids=[w for w, _ in COMMANDS])
def test_command_names_a_real_entry_point(where: str, command: list[str]) -> None:
    scripts = PYPROJECT["project"]["scripts"]
    if command[0] in scripts:
        return
    assert command[0] == "python", f"{where}: runs {command[0]!r}, not python or a script"
    modules = python_modules(command)
    assert modules, f"{where}: not a `python -m` command"
    for module in modules:
        spec = importlib.util.find_spec(module)
        assert spec is not None, f"{where}: no module {module}"
        assert spec.origin, f"{where}: no module {module}"
        if spec.submodule_search_locations is not None:  # a package: python -m runs __main__
            assert importlib.util.find_spec(f"{module}.__main__"), f"{where}: {module} no __main__"
        else:
            source = Path(spec.origin).read_text()
            assert 'if __name__ == "__main__":' in source, f"{where}: {module} runs nothing"


def test_migration_commands_name_real_histories() -> None:
    from services.runtime.migrate.job import load_history

    for where, command in COMMANDS:
        if "services.runtime.migrate" in python_modules(command):
            specs = command[command.index("services.runtime.migrate") + 1 :]
            assert specs, f"{where}: no history named"
            for spec in specs:
                load_history(spec)


def test_console_script_exists() -> None:
    target = PYPROJECT["project"]["scripts"]["cardflow"]
    module, _, function = target.partition(":")
    assert callable(getattr(importlib.import_module(module), function))


def _images() -> list[tuple[str, str]]:
    found = [(f"{m}:{c['name']}", str(c["image"])) for m, c in k8s_containers()]
    found += [(f"compose:{n}", str(s["image"])) for n, s in compose_services().items()]
    args = {}
    for instruction in dockerfile_instructions():
        if instruction.keyword == "ARG" and "=" in instruction.args:
            name, _, value = instruction.args.partition("=")
            args[name] = value
        if instruction.keyword == "FROM":
            image = instruction.args.split()[0]
            image = re.sub(r"\$\{(\w+)\}", lambda m: args[m.group(1)], image)
            found.append(("Dockerfile FROM", image))
    return [(where, image) for where, image in found if image != "build"]


def _is_build_stage(image: str) -> bool:
    stages = [
        i.args.split()[-1]
        for i in dockerfile_instructions()
        if i.keyword == "FROM" and " AS " in i.args.upper()
    ]
    return image in stages


@pytest.mark.parametrize(("where", "image"), _images(), ids=[w for w, _ in _images()])
def test_image_is_ours_or_pinned_official(where: str, image: str) -> None:
    if _is_build_stage(image):
        return
    if image.startswith("cardflow:"):
        assert image == IMAGE, f"{where}: {image}; the Dockerfile's image is {IMAGE}"
        return
    repository, _, tag = image.partition(":")
    assert repository in OFFICIAL, f"{where}: {image} is neither ours nor an allowed image"
    assert re.fullmatch(OFFICIAL[repository], tag), f"{where}: {image} is not pinned"


def test_compose_builds_our_image_from_the_dockerfile() -> None:
    for name, service in compose_services().items():
        if service["image"] == IMAGE:
            build = service["build"]
            context = (REPO / "deploy" / build["context"]).resolve()
            assert context == REPO, f"compose:{name} builds from {context}"
            assert (context / build["dockerfile"]).resolve() == DOCKERFILE


def test_dockerfile_runs_as_a_user_other_than_root() -> None:
    users = [i.args for i in dockerfile_instructions() if i.keyword == "USER"]
    assert users, "no USER: the image would run as root"
    uid = users[-1].split(":")[0]
    assert uid not in ("0", "root")
    for manifest, container in k8s_containers():
        del container
        assert manifest.doc["spec"]["template"]["spec"]["securityContext"]["runAsUser"] == int(uid)


def test_dockerfile_copies_only_what_the_context_holds() -> None:
    """Every COPY source exists and is let through by .dockerignore (which excludes all
    but an allow-list)."""
    ignore = [line.strip() for line in DOCKERIGNORE.read_text().splitlines()]
    assert "*" in ignore, ".dockerignore starts by excluding everything"
    allowed = {line[1:] for line in ignore if line.startswith("!")}
    for instruction in dockerfile_instructions():
        if instruction.keyword != "COPY" or instruction.args.startswith("--from"):
            continue
        *sources, _ = shlex.split(instruction.args)
        for source in sources:
            assert (REPO / source).exists(), f"COPY {source}: no such path"
            assert source in allowed, f"COPY {source}: .dockerignore leaves it out"


# --- The lock filter the image is installed from (deploy/docker/runtime_lock.py) -------------


def _runtime_pins() -> dict[str, str]:
    lock = (REPO / "requirements.lock").read_text()
    roots = runtime_lock.roots_of(PYPROJECT, build=False)
    return {p.name: p.lines[0] for p in runtime_lock.needed(runtime_lock.parse_lock(lock), roots)}


def _closure(requirements: list[str], extras: frozenset[str] = frozenset()) -> set[str]:
    """Distribution names the installed metadata says ``requirements`` need, transitively
    (markers evaluated for this interpreter)."""
    seen: set[str] = set()
    todo = [(Requirement(r), frozenset(Requirement(r).extras)) for r in requirements]
    environment = default_environment()
    while todo:
        requirement, wanted = todo.pop()
        name = runtime_lock.normalize(requirement.name)
        if name in seen:
            continue
        seen.add(name)
        for text in importlib.metadata.requires(requirement.name) or []:
            dependency = Requirement(text)
            if dependency.marker is not None and not any(
                dependency.marker.evaluate({**environment, "extra": extra})
                for extra in (wanted or {""})
            ):
                continue
            todo.append((dependency, frozenset(dependency.extras)))
    del extras
    return seen


def test_runtime_lock_holds_every_runtime_dependency() -> None:
    """What the project's dependencies need (from the installed packages' own metadata) is
    in the runtime subset, with the version the tests run."""
    pins = _runtime_pins()
    needed = _closure(PYPROJECT["project"]["dependencies"])
    missing = sorted(needed - pins.keys())
    assert not missing, f"the image would lack {missing}"
    for name in needed:
        installed = importlib.metadata.version(name)
        assert f"=={installed}" in pins[name], f"{name}: lock {pins[name]}, installed {installed}"


def test_runtime_lock_leaves_the_test_tools_out() -> None:
    pins = _runtime_pins()
    for tool in ("pytest", "playwright", "mypy", "ruff", "testcontainers", "kubernetes-validate"):
        assert tool not in pins


def test_runtime_lock_keeps_the_hashes() -> None:
    lock = (REPO / "requirements.lock").read_text()
    pins = runtime_lock.parse_lock(lock)
    text = runtime_lock.render(runtime_lock.needed(pins, {"fastapi"}), "test")
    assert "fastapi==" in text
    assert "--hash=sha256:" in text
    assert "pytest" not in text
    build = runtime_lock.roots_of(PYPROJECT, build=True)
    assert build == {"setuptools"}
    assert runtime_lock.needed(pins, build)


def test_runtime_lock_script_runs_as_the_dockerfile_runs_it(tmp_path: Path) -> None:
    script = REPO / "deploy" / "docker" / "runtime_lock.py"
    result = subprocess.run(
        [sys.executable, str(script), "requirements.lock", "pyproject.toml"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    )
    names = {
        runtime_lock.requirement_name(line) for line in result.stdout.splitlines() if "==" in line
    }
    assert names == set(_runtime_pins())


def test_the_wheel_the_image_installs_holds_every_package_file(tmp_path: Path) -> None:
    """The image installs the project as a wheel (not editable, as locally): every file the
    code loads beside its modules (migrations, prompts, the web page, schemas) must be in it."""
    # What the Dockerfile copies into its build stage, built outside the checkout (a build
    # inside it would leave build/ behind).
    source = tmp_path / "src"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(REPO / name, source / name)
    for name in ("contracts", "services"):
        shutil.copytree(REPO / name, source / name, ignore=shutil.ignore_patterns("__pycache__"))
    subprocess.run(
        [
            sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps",
            "--no-build-isolation", "--wheel-dir", str(tmp_path / "dist"), str(source),
        ],
        check=True,
        cwd=tmp_path,
        capture_output=True,
    )  # fmt: skip
    (wheel,) = (tmp_path / "dist").glob("cardflow-*.whl")
    packaged = set(zipfile.ZipFile(wheel).namelist())
    expected = {
        str(path.relative_to(REPO))
        for top in ("contracts", "services")
        for path in (REPO / top).rglob("*")
        if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc"
    }
    missing = sorted(expected - packaged)
    assert not missing, f"the image would lack {missing}"
