#!/usr/bin/env bash
# Builds the release binary, starts a broker on a fresh data directory and runs the shared
# kbench scenarios against it (rdkafka_performance underneath). Prints kbench's rows.
#   scripts/bench.sh [PORT]
set -euo pipefail
cd "$(dirname "$0")/.."
port=${1:-19092}
kbench=${KBENCH:-../shared/tools/kbench}
cargo build --release --bin runnel
data=$(mktemp -d)
trap 'kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; rm -rf "$data"' EXIT
./target/release/runnel server --listen "127.0.0.1:$port" --data-dir "$data" >"$data.log" 2>&1 &
pid=$!
for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/"$port") 2>/dev/null && break; sleep 0.1; done
"$kbench" "127.0.0.1:$port" runnel
