#!/usr/bin/env bash
# Runs a single-node KRaft Apache Kafka broker (broker and controller in one process) in the
# foreground. Storage is formatted on first start and reused after.
#
#   run.sh [--data-dir DIR] [--port 9092] [--controller-port 9093] [--host 127.0.0.1]
#
# Environment: KAFKA_HEAP_OPTS (default -Xms256m -Xmx768m).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
data_dir="${CARDFLOW_KAFKA_DATA_DIR:-$here/../../.cardflow/kafka}"
port="${CARDFLOW_KAFKA_PORT:-9092}"
controller_port=""
host="127.0.0.1"

while [[ $# -gt 0 ]]; do
  case "$1" in
    --data-dir) data_dir="$2"; shift 2 ;;
    --port) port="$2"; shift 2 ;;
    --controller-port) controller_port="$2"; shift 2 ;;
    --host) host="$2"; shift 2 ;;
    *) echo "error: unknown option $1" >&2; exit 2 ;;
  esac
done
controller_port="${controller_port:-$((port + 1))}"

"$here/check-java.sh"
libs="$("$here/fetch.sh")"
mkdir -p "$data_dir/logs"
data_dir="$(cd "$data_dir" && pwd)"
props="$data_dir/server.properties"

# Rewritten on every start so a changed port takes effect; the log dir keeps the cluster id.
cat > "$props" <<PROPS
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@$host:$controller_port
listeners=PLAINTEXT://$host:$port,CONTROLLER://$host:$controller_port
advertised.listeners=PLAINTEXT://$host:$port
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs=$data_dir/logs
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
  "${java_cmd[@]}" kafka.tools.StorageTool format --ignore-formatted -t "$cluster_id" -c "$props" >&2
fi

exec "${java_cmd[@]}" kafka.Kafka "$props"
