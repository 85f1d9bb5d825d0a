#!/usr/bin/env bash
# Installs everything the build and the integration tests need on a fresh Debian 12 machine:
#   - build deps for librdkafka's bundled build (rdkafka-sys): C/C++ toolchain, make,
#     pkg-config, zlib, zstd, OpenSSL headers;
#   - kcat (tests/kcat.rs);
#   - python3 + pip + kafka-python 2.x + lz4 (tests/python_clients.rs).
# Idempotent: checks first, runs `apt-get update` only when a package is missing. Run as root
# (or with passwordless sudo).
set -euo pipefail

SUDO=""
if [ "$(id -u)" != "0" ]; then
    SUDO="sudo"
fi

APT_PACKAGES=(
    build-essential g++ make pkg-config
    zlib1g-dev libzstd-dev libssl-dev
    kcat
    python3 python3-pip
)

missing=()
for pkg in "${APT_PACKAGES[@]}"; do
    if ! dpkg -s "$pkg" >/dev/null 2>&1; then
        missing+=("$pkg")
    fi
done
if [ "${#missing[@]}" -gt 0 ]; then
    echo "install-test-deps: installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    $SUDO apt-get update -qq
    $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
command -v kcat >/dev/null || { echo "install-test-deps: kcat not on PATH" >&2; exit 1; }

# The tests run whichever `python3` is first on PATH, so install into that one.
PY_REQS=("kafka-python>=2.0.2,<3" "lz4")
if ! python3 -c 'import kafka, lz4, sys; sys.exit(0 if kafka.__version__.startswith("2.") else 1)' \
    >/dev/null 2>&1; then
    echo "install-test-deps: pip installing ${PY_REQS[*]} for $(command -v python3)"
    if ! python3 -m pip --version >/dev/null 2>&1; then
        echo "install-test-deps: $(command -v python3) has no pip" >&2
        exit 1
    fi
    pip_log=$(mktemp)
    if ! python3 -m pip install --quiet --disable-pip-version-check "${PY_REQS[@]}" \
        >"$pip_log" 2>&1; then
        if grep -q externally-managed-environment "$pip_log"; then
            python3 -m pip install --quiet --disable-pip-version-check \
                --break-system-packages "${PY_REQS[@]}"
        else
            cat "$pip_log" >&2
            rm -f "$pip_log"
            exit 1
        fi
    fi
    rm -f "$pip_log"
fi
python3 -c 'import kafka, lz4; print("install-test-deps: kafka-python", kafka.__version__, "ok")'
