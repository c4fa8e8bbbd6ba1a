#!/usr/bin/env bash
# Fails with a clear message unless a Java 17+ runtime is on PATH (Kafka 4 brokers need 17).
set -euo pipefail
if ! command -v java >/dev/null 2>&1; then
  echo "error: Java is not on PATH; the local Apache Kafka broker needs Java 17 or newer." >&2
  echo "       Install it (Debian/Ubuntu: apt-get install openjdk-17-jre-headless) or set KAFKA_BOOTSTRAP_SERVERS." >&2
  exit 1
fi
major="$(java -XshowSettings:properties -version 2>&1 | sed -n 's/^ *java.specification.version = //p' | cut -d. -f1)"
if [[ -z "$major" || "$major" -lt 17 ]]; then
  echo "error: Java ${major:-unknown} found; the local Apache Kafka broker needs Java 17 or newer." >&2
  exit 1
fi
