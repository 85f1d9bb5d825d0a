#!/usr/bin/env bash
# Runs `runnel perf` and librdkafka's rdkafka_performance through the same scenarios against
# the same freshly started release broker, one after the other, so the two tools' figures can
# be compared row by row (BENCHMARKS.md, "runnel perf beside rdkafka_performance").
#   scripts/bench-perf-tool.sh [PORT] [BROKER_BOOTSTRAP]
# With BROKER_BOOTSTRAP, no broker is started and that one is measured instead.
set -euo pipefail
cd "$(dirname "$0")/.."
port=${1:-19093}
perf_tool=${RDKAFKA_PERF:-../shared/tools/rdkafka-perf}
cargo build --release --bin runnel
runnel=./target/release/runnel
if [ -n "${2:-}" ]; then
  b=$2
else
  data=$(mktemp -d)
  trap 'kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; rm -rf "$data"' EXIT
  $runnel server --listen "127.0.0.1:$port" --data-dir "$data" --no-metrics >"$data.log" 2>&1 &
  pid=$!
  for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/"$port") 2>/dev/null && break; sleep 0.1; done
  b=127.0.0.1:$port
fi
run=$(date +%s%N | tail -c 7)
for t in r100 p100 r1k p1k rlat plat; do $runnel topic create "$t-$run" -b "$b" >/dev/null; done

rd() { # label, field of records/s, extra fields..., -- rdkafka_performance args
  local label=$1 fields=$2; shift 2
  "$perf_tool" "$@" -u -q 2>&1 | grep -E '^\|' | tail -1 |
    awk -F'|' -v l="$label" -v f="$fields" '{gsub(/ /,""); split(f, a, ","); printf "%-44s records/s=%s", l, $a[1]; if (a[2]) printf " avg_ms=%s max_ms=%s", $a[2], $a[3]; print ""}'
}
rp() { # label, runnel perf args
  local label=$1; shift
  $runnel perf "$@" -b "$b" -q --json | python3 -c '
import json, sys
r = json.load(sys.stdin)
line = "%-44s records/s=%.0f" % (sys.argv[1], r["records_per_sec"])
for name, l in r["latency_ms"].items():
    if l and name != "record_age":
        line += " %s: avg_ms=%s p99_ms=%s max_ms=%s" % (name, l["avg"], l["p99"], l["max"])
print(line)' "$label"
}

rd "rdkafka_performance produce 100B acks=1" 7 -P -t "r100-$run" -p 0 -b "$b" -s 100 -c 2000000 -a 1 -X linger.ms=5 -X batch.size=1000000
rd "rdkafka_performance -l produce 100B acks=1" 7,14,16 -P -t "r100-$run" -p 0 -b "$b" -s 100 -c 2000000 -a 1 -l -X linger.ms=5 -X batch.size=1000000
rp "runnel perf produce 100B acks=1" produce --topic "p100-$run" --num-records 2000000 --record-size 100 --acks 1
rp "runnel perf produce 100B acks=1 (again)" produce --topic "p100-$run" --num-records 2000000 --record-size 100 --acks 1
rd "rdkafka_performance produce 1KiB acks=all" 7 -P -t "r1k-$run" -p 0 -b "$b" -s 1024 -c 500000 -a -1 -X linger.ms=5 -X batch.size=1000000
rd "rdkafka_performance -l produce 1KiB acks=all" 7,14,16 -P -t "r1k-$run" -p 0 -b "$b" -s 1024 -c 500000 -a -1 -l -X linger.ms=5 -X batch.size=1000000
rp "runnel perf produce 1KiB acks=all" produce --topic "p1k-$run" --num-records 1000000 --record-size 1024 --acks all
rd "rdkafka_performance consume 100B" 6 -C -t "r100-$run" -p 0 -b "$b" -c 4000000 -o beginning
rp "runnel perf consume 100B" consume --topic "p100-$run"
rd "rdkafka_performance consume 1KiB" 6 -C -t "r1k-$run" -p 0 -b "$b" -c 1000000 -o beginning
rp "runnel perf consume 1KiB" consume --topic "p1k-$run"
rd "rdkafka_performance -l 20k/s, linger 0, acks=1" 7,14,16 -P -t "rlat-$run" -p 0 -b "$b" -s 100 -c 100000 -r 20000 -a 1 -l -X linger.ms=0
rp "runnel perf produce 20k/s, linger 0, acks=1" produce --topic "plat-$run" --num-records 100000 --throughput 20000 --linger-ms 0 --acks 1
rp "runnel perf e2e 20k/s, linger 0, acks=1" e2e --topic "plat-$run" --num-records 100000 --throughput 20000 --acks 1
