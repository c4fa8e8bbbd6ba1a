"""A throwaway TLS identity for a test broker, made with the JDK's keytool (Java is here for
Kafka anyway): a self-signed certificate for 127.0.0.1/localhost in a PKCS12 keystore, and the
same certificate as the PEM CA bundle clients check it against."""

from __future__ import annotations

import secrets
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class BrokerCertificate:
    keystore: Path
    password: str
    ca_pem: Path


def make_broker_certificate(directory: Path, host: str = "127.0.0.1") -> BrokerCertificate:
    keytool = shutil.which("keytool")
    if keytool is None:
        raise RuntimeError("keytool (from the JDK that runs Kafka) is not on PATH")
    directory.mkdir(parents=True, exist_ok=True)
    keystore, ca_pem = directory / "broker.p12", directory / "ca.pem"
    password = secrets.token_urlsafe(16)
    common = ["-keystore", str(keystore), "-storetype", "PKCS12", "-storepass", password]
    subprocess.run(
        [
            keytool,
            "-genkeypair",
            "-alias",
            "broker",
            "-keyalg",
            "RSA",
            "-keysize",
            "2048",
            "-validity",
            "2",
            "-dname",
            "CN=cardflow test broker",
            "-ext",
            f"SAN=ip:{host},dns:localhost",
            "-keypass",
            password,
            *common,
        ],
        check=True,
        capture_output=True,
    )
    subprocess.run(
        [keytool, "-exportcert", "-rfc", "-alias", "broker", "-file", str(ca_pem), *common],
        check=True,
        capture_output=True,
    )
    return BrokerCertificate(keystore, password, ca_pem)
