#!/usr/bin/env bash
# The whole check: test dependencies, build, formatting, lints, then every test.
# Used by CI (.ci/run) and by developers. Fails on the first failing step.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/install-test-deps.sh

if [ "${CI:-}" = "true" ]; then
    # A one-shot build gains nothing from incremental artifacts, which take gigabytes of disk.
    export CARGO_INCREMENTAL=0
    df -h . | sed 's/^/test.sh: disk: /'
fi

# The integration tests (crates/runnel-tests) run the built `runnel` binary.
cargo build --bins
cargo fmt --all -- --check
cargo clippy --workspace --all-targets -- -D warnings

if cargo nextest --version >/dev/null 2>&1; then
    profile=()
    if [ "${CI:-}" = "true" ] && [ -f .config/nextest.toml ]; then
        profile=(--profile ci)
    fi
    cargo nextest run --workspace "${profile[@]}"
else
    cargo test --workspace
fi
