#!/usr/bin/env bash
# Runs a single-node KRaft Apache Kafka broker (broker and controller in one process) in the
# foreground. Storage is formatted on first start and reused after.
#
#   run.sh [--data-dir DIR] [--port 9092] [--controller-port 9093] [--host 127.0.0.1]
#          [--sasl-port PORT] [--tls-port PORT] [--sasl-tls-port PORT]
#
# Listeners beside PLAINTEXT on --port (inter-broker and controller traffic stay plaintext):
#   --sasl-port      SASL_PLAINTEXT: SASL (PLAIN and SCRAM-SHA-512), no TLS
#   --tls-port       SSL: TLS, no SASL
#   --sasl-tls-port  SASL_SSL: SASL over TLS
# SASL users come from CARDFLOW_KAFKA_SASL_USERS ("user:password,user2:password2"; SCRAM users
# are created when the storage is formatted, i.e. on the first start of a data dir). TLS
# listeners serve the PKCS12 keystore CARDFLOW_KAFKA_TLS_KEYSTORE, whose password is
# CARDFLOW_KAFKA_TLS_KEYSTORE_PASSWORD.
#
# Environment: KAFKA_HEAP_OPTS (default -Xms256m -Xmx768m).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
data_dir="${CARDFLOW_KAFKA_DATA_DIR:-$here/../../.cardflow/kafka}"
port="${CARDFLOW_KAFKA_PORT:-9092}"
controller_port=""
host="127.0.0.1"
sasl_port=""
tls_port=""
sasl_tls_port=""

while [[ $# -gt 0 ]]; do
  case "$1" in
    --data-dir) data_dir="$2"; shift 2 ;;
    --port) port="$2"; shift 2 ;;
    --controller-port) controller_port="$2"; shift 2 ;;
    --host) host="$2"; shift 2 ;;
    --sasl-port) sasl_port="$2"; shift 2 ;;
    --tls-port) tls_port="$2"; shift 2 ;;
    --sasl-tls-port) sasl_tls_port="$2"; shift 2 ;;
    *) echo "error: unknown option $1" >&2; exit 2 ;;
  esac
done
controller_port="${controller_port:-$((port + 1))}"

"$here/check-java.sh"
libs="$("$here/fetch.sh")"
mkdir -p "$data_dir/logs"
data_dir="$(cd "$data_dir" && pwd)"
props="$data_dir/server.properties"

listeners="PLAINTEXT://$host:$port,CONTROLLER://$host:$controller_port"
advertised="PLAINTEXT://$host:$port"
protocols="CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT"
extra_props=""
scram_args=()

add_listener() {  # name port
  listeners+=",$1://$host:$2"
  advertised+=",$1://$host:$2"
  protocols+=",$1:$1"
}

if [[ -n "$sasl_port$sasl_tls_port" ]]; then
  if [[ -z "${CARDFLOW_KAFKA_SASL_USERS:-}" ]]; then
    echo "error: a SASL listener needs CARDFLOW_KAFKA_SASL_USERS=user:password[,...]" >&2
    exit 2
  fi
  plain_users=""
  IFS=',' read -ra pairs <<< "$CARDFLOW_KAFKA_SASL_USERS"
  for pair in "${pairs[@]}"; do
    user="${pair%%:*}"; password="${pair#*:}"
    plain_users+=" user_$user=\"$password\""
    scram_args+=(--add-scram "SCRAM-SHA-512=[name=$user,password=$password]")
  done
  extra_props+="sasl.enabled.mechanisms=PLAIN,SCRAM-SHA-512"$'\n'
  for listener in SASL_PLAINTEXT SASL_SSL; do
    name="${listener,,}"
    extra_props+="listener.name.$name.plain.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required$plain_users;"$'\n'
    extra_props+="listener.name.$name.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;"$'\n'
  done
fi
if [[ -n "$tls_port$sasl_tls_port" ]]; then
  if [[ -z "${CARDFLOW_KAFKA_TLS_KEYSTORE:-}" || -z "${CARDFLOW_KAFKA_TLS_KEYSTORE_PASSWORD:-}" ]]; then
    echo "error: a TLS listener needs CARDFLOW_KAFKA_TLS_KEYSTORE (PKCS12) and" \
      "CARDFLOW_KAFKA_TLS_KEYSTORE_PASSWORD" >&2
    exit 2
  fi
  extra_props+="ssl.keystore.type=PKCS12
ssl.keystore.location=$CARDFLOW_KAFKA_TLS_KEYSTORE
ssl.keystore.password=$CARDFLOW_KAFKA_TLS_KEYSTORE_PASSWORD
ssl.key.password=$CARDFLOW_KAFKA_TLS_KEYSTORE_PASSWORD"$'\n'
fi
if [[ -n "$sasl_port" ]]; then add_listener SASL_PLAINTEXT "$sasl_port"; fi
if [[ -n "$tls_port" ]]; then add_listener SSL "$tls_port"; fi
if [[ -n "$sasl_tls_port" ]]; then add_listener SASL_SSL "$sasl_tls_port"; fi

# Rewritten on every start so a changed port takes effect; the log dir keeps the cluster id.
# Owner-only: it may hold passwords.
umask 077
cat > "$props" <<PROPS
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@$host:$controller_port
listeners=$listeners
advertised.listeners=$advertised
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=$protocols
${extra_props}log.dirs=$data_dir/logs
num.partitions=3
default.replication.factor=1
min.insync.replicas=1
auto.create.topics.enable=true
offsets.topic.replication.factor=1
offsets.topic.num.partitions=10
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=5
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
log.retention.hours=168
PROPS

java_cmd=(java ${KAFKA_HEAP_OPTS:--Xms256m -Xmx768m} -XX:+UseG1GC -Djava.awt.headless=true
  "-Dlog4j2.configurationFile=$here/log4j2.properties" -cp "$libs/*")

if [[ ! -f "$data_dir/logs/meta.properties" ]]; then
  cluster_id="$("${java_cmd[@]}" kafka.tools.StorageTool random-uuid | tail -n1)"
  "${java_cmd[@]}" kafka.tools.StorageTool format --ignore-formatted -t "$cluster_id" -c "$props" \
    ${scram_args[@]+"${scram_args[@]}"} >&2
fi

exec "${java_cmd[@]}" kafka.Kafka "$props"
