#!/usr/bin/env bash
# The product end to end on this machine, no AWS account needed: builds wsctl, starts
# `wsctl dev` (the bundled handler behind a local API Gateway) on a free port, runs
# `wsctl smoke` against it (connect, ping, pong), runs a broadcast through dev's Lambda invoke
# API (the runbook's Step 6 path; it reports the connections it reached), and stops the gateway. Exit 0 when every step worked.
#
#   scripts/demo.sh
#
# Needs only Rust (cargo). CARGO_TARGET_DIR is honoured.
set -euo pipefail
cd "$(dirname "$0")/.."
echo "building wsctl (debug)" >&2
cargo build --locked --quiet --bin wsctl
wsctl="${CARGO_TARGET_DIR:-$PWD/target}/debug/wsctl"
work=$(mktemp -d)
dev_pid=""
cleanup() {
    [ -z "$dev_pid" ] || { kill -TERM "$dev_pid" 2>/dev/null || true; wait "$dev_pid" 2>/dev/null || true; }
    rm -rf "$work"
}
trap cleanup EXIT

"$wsctl" --config config.example.toml dev --port 0 >"$work/url" 2>"$work/dev.log" &
dev_pid=$!
for _ in $(seq 1 100); do
    [ -s "$work/url" ] && break
    kill -0 "$dev_pid" 2>/dev/null || { cat "$work/dev.log" >&2; echo "error: wsctl dev did not start" >&2; exit 1; }
    sleep 0.1
done
url=$(head -n1 "$work/url")
[ -n "$url" ] || { echo "error: wsctl dev printed no URL in 10 s" >&2; exit 1; }
port=${url##*:}; port=${port%%/*}
echo "1. wsctl dev is serving $url" >&2

echo "2. wsctl smoke: connect, ping, expect a pong" >&2
"$wsctl" smoke --url "$url" --timeout 10s

echo "3. wsctl broadcast through dev's Lambda invoke API (the smoke client has left: 0 delivered)" >&2
export AWS_ENDPOINT_URL_LAMBDA="http://127.0.0.1:$port" AWS_REGION=us-east-1 \
    AWS_ACCESS_KEY_ID=dev AWS_SECRET_ACCESS_KEY=dev AWS_EC2_METADATA_DISABLED=true
"$wsctl" --config config.example.toml broadcast --type demo --data '{"hello":"world"}'

echo "demo: every step worked; wsctl dev is stopping" >&2
