#!/usr/bin/env bash
# Run once by docker-compose.yml's `topics` container, as the broker's admin (SASL/PLAIN on the
# INTERNAL listener, which only the brokers and this container use). It creates every topic of
# the contracts' registry (contracts/topics.py), a SCRAM-SHA-512 user for each service and each
# upstream publisher, and the ACLs: each upstream writes only its own event type's topic, each
# service reads and writes only its own topics and consumer groups. Nothing else is allowed
# (allow.everyone.if.no.acl.found=false). A unit test (tests/unit/test_kafka_acls.py) checks
# the `allow` lines below against the registry, the settings and deploy/publishers.yaml.
#
# Every password comes from the environment (.env, see .env.example); an unset one stops here,
# naming its variable. No password is printed.
set -euo pipefail

BOOTSTRAP=${BOOTSTRAP:-kafka:9094}
BIN=/opt/kafka/bin
ADMIN_CONFIG=$(mktemp)
trap 'rm -f "$ADMIN_CONFIG"' EXIT
cat > "$ADMIN_CONFIG" <<CONFIG
security.protocol=SASL_PLAINTEXT
sasl.mechanism=PLAIN
sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required username="admin" password="${KAFKA_ADMIN_PASSWORD:?set KAFKA_ADMIN_PASSWORD in .env}";
CONFIG

create() {  # TOPIC CONFIG: one topic, with the registry's configuration
  "$BIN/kafka-topics.sh" --bootstrap-server "$BOOTSTRAP" --command-config "$ADMIN_CONFIG" \
    --create --if-not-exists --topic "$1" --partitions "$PARTITIONS" \
    --replication-factor "$REPLICATION_FACTOR" --config "min.insync.replicas=$MIN_INSYNC_REPLICAS" \
    --config "$2"
}

user() {  # NAME PASSWORD_VARIABLE [optional]: a SCRAM-SHA-512 user, its password in that variable
  local password=${!2:-}
  if [ -z "$password" ] && [ "${3:-}" = optional ]; then
    echo "user $1: not created, $2 is unset (it cannot connect until it is set and this reruns)"
    return
  elif [ -z "$password" ]; then
    echo "kafka setup: $2 (the password of Kafka user $1) is unset: set it in .env" >&2
    exit 1
  fi
  "$BIN/kafka-configs.sh" --bootstrap-server "$BOOTSTRAP" --command-config "$ADMIN_CONFIG" \
    --alter --entity-type users --entity-name "$1" \
    --add-config "SCRAM-SHA-512=[iterations=8192,password=$password]" > /dev/null
  echo "user $1"
}

allow() {  # USER OPERATION topic|group NAME
  "$BIN/kafka-acls.sh" --bootstrap-server "$BOOTSTRAP" --command-config "$ADMIN_CONFIG" \
    --add --allow-principal "User:$1" --operation "$2" "--$3" "$4" > /dev/null
  echo "allow $1 $2 $3 $4"
}

# Topics (contracts/topics.py: TopicSpec.topic_config)
create roadmap.trade.shipments retention.ms=604800000
create roadmap.projects.milestones retention.ms=604800000
create roadmap.hiring.reports retention.ms=604800000
create roadmap.events.v1 cleanup.policy=compact
create roadmap.events.dlq retention.ms=2592000000
create roadmap.kpi.v1 cleanup.policy=compact
create roadmap.alerts.v1 retention.ms=-1

# Users: the three services, then one per upstream publisher (the names of deploy/publishers.yaml;
# an upstream whose password is not set yet is left out)
user ingest KAFKA_PASSWORD_INGEST
user metrics KAFKA_PASSWORD_METRICS
user alerts KAFKA_PASSWORD_ALERTS
user customs-kz KAFKA_PASSWORD_CUSTOMS_KZ optional
user customs-by KAFKA_PASSWORD_CUSTOMS_BY optional
user rail-kz KAFKA_PASSWORD_RAIL_KZ optional
user rail-by KAFKA_PASSWORD_RAIL_BY optional
user freight-hub KAFKA_PASSWORD_FREIGHT_HUB optional
user project-office KAFKA_PASSWORD_PROJECT_OFFICE optional
user employment-agency KAFKA_PASSWORD_EMPLOYMENT_AGENCY optional

# Upstreams write only their own event type's topic.
allow customs-kz Write topic roadmap.trade.shipments
allow customs-by Write topic roadmap.trade.shipments
allow rail-kz Write topic roadmap.trade.shipments
allow rail-by Write topic roadmap.trade.shipments
allow freight-hub Write topic roadmap.trade.shipments
allow project-office Write topic roadmap.projects.milestones
allow employment-agency Write topic roadmap.hiring.reports

# ingest: reads the upstream topics in its group, writes canonical events and dead letters, and
# re-reads the canonical topic's tail at start-up (the dedup window; no group).
allow ingest Read topic roadmap.trade.shipments
allow ingest Read topic roadmap.projects.milestones
allow ingest Read topic roadmap.hiring.reports
allow ingest Read group roadmap-ingest
allow ingest Write topic roadmap.events.v1
allow ingest Write topic roadmap.events.dlq
allow ingest Read topic roadmap.events.v1

# metrics: replays the canonical topic in its group, writes KPI snapshots.
allow metrics Read topic roadmap.events.v1
allow metrics Read group roadmap-metrics
allow metrics Write topic roadmap.kpi.v1

# alerts: reads KPI snapshots, canonical events and dead letters (the DLQ share), writes and
# delivers alert transitions in its delivery group, and reads ingest's and metrics' committed
# offsets to see a stall (Describe on their groups and the topics they read).
allow alerts Read topic roadmap.kpi.v1
allow alerts Read topic roadmap.events.v1
allow alerts Read topic roadmap.events.dlq
allow alerts Write topic roadmap.alerts.v1
allow alerts Read topic roadmap.alerts.v1
allow alerts Read group roadmap-alerts-delivery
allow alerts Describe group roadmap-ingest
allow alerts Describe group roadmap-metrics
allow alerts Describe topic roadmap.trade.shipments
allow alerts Describe topic roadmap.projects.milestones
allow alerts Describe topic roadmap.hiring.reports

"$BIN/kafka-topics.sh" --bootstrap-server "$BOOTSTRAP" --command-config "$ADMIN_CONFIG" \
  --describe --exclude-internal
