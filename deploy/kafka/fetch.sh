#!/usr/bin/env bash
# Resolves the Apache Kafka broker jars (pom.xml beside this file) from Maven Central into a
# cache outside the checkout and prints the folder holding them. Idempotent: a cache entry is
# keyed by the pom's hash and reused as long as it is complete.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cache_root="${CARDFLOW_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/cardflow}"
pom_hash="$(sha256sum "$here/pom.xml" | cut -c1-16)"
version="$(sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' "$here/pom.xml")"
libs="$cache_root/kafka/$version-$pom_hash/libs"

if [[ -f "$libs/.complete" ]]; then
  echo "$libs"
  exit 0
fi

"$here/check-java.sh"
if ! command -v mvn >/dev/null 2>&1; then
  echo "error: Maven (mvn) is not on PATH; it fetches the Kafka $version broker jars from Maven Central." >&2
  echo "       Install it (Debian/Ubuntu: apt-get install maven) or point KAFKA_BOOTSTRAP_SERVERS at a broker." >&2
  exit 1
fi

echo "fetching Apache Kafka $version broker jars into $libs (once; later runs reuse them)" >&2
tmp="$libs.partial.$$"
rm -rf "$tmp"
mkdir -p "$tmp"
if ! mvn -q -B -f "$here/pom.xml" dependency:copy-dependencies \
      -DincludeScope=runtime -DoutputDirectory="$tmp" >&2; then
  rm -rf "$tmp"
  echo "error: Maven could not resolve org.apache.kafka:kafka_2.13:$version (see its output above)." >&2
  exit 1
fi
rm -rf "$libs"
mv "$tmp" "$libs"
touch "$libs/.complete"
echo "$libs"
