#!/usr/bin/env bash
# The product end to end on this machine, no AWS account needed: builds wsctl, starts
# `wsctl dev` (the bundled handler behind a local API Gateway, keeping 10 minutes of history)
# on a free port, runs `wsctl smoke` against it (connect, ping, pong), holds two clients open
# (`wsctl listen`), broadcasts to them through dev's Lambda invoke API (the runbook's Step 6
# path; it reports the connections it reached), drops both without a close frame while two
# more messages are broadcast, and shows each client back with exactly what it missed, in
# order. Exit 0 when every step worked.
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

"$wsctl" --config config.example.toml dev --port 0 --history 10m >"$work/url" 2>"$work/dev.log" &
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

export AWS_ENDPOINT_URL_LAMBDA="http://127.0.0.1:$port" AWS_REGION=us-east-1 \
    AWS_ACCESS_KEY_ID=dev AWS_SECRET_ACCESS_KEY=dev AWS_EC2_METADATA_DISABLED=true

echo "3. two clients held open on topic demo (wsctl listen: stays, and resumes after a drop)" >&2
for c in 1 2; do
    "$wsctl" listen --url "$url" --topic demo --count 3 --timeout 30s >"$work/client$c.out" 2>"$work/client$c.log" &
    eval "client${c}_pid=$!"
done
for _ in $(seq 1 100); do
    [ "$(grep -c '\$connect ' "$work/dev.log")" -ge 3 ] && [ "$(grep -c 'subscribed\|default ' "$work/dev.log")" -ge 2 ] && break
    sleep 0.1
done
sleep 0.3

echo "4. wsctl broadcast message 1 to topic demo: both clients get it" >&2
"$wsctl" --config config.example.toml broadcast --topic demo --type demo --data '{"n":1}'

echo "5. both clients dropped without a close frame (wsctl dev drop); messages 2 and 3 reach no one" >&2
"$wsctl" dev drop --url "http://127.0.0.1:$port" --mode abrupt
"$wsctl" --config config.example.toml broadcast --topic demo --type demo --data '{"n":2}'
"$wsctl" --config config.example.toml broadcast --topic demo --type demo --data '{"n":3}'

echo "6. back with what they missed, in order" >&2
for c in 1 2; do
    pid_var="client${c}_pid"
    wait "${!pid_var}" || { cat "$work/client$c.log" >&2; echo "error: client $c did not get 3 messages" >&2; exit 1; }
    got=$(sed -n 's/.*"n":\([0-9]*\).*/\1/p' "$work/client$c.out" | tr '\n' ' ')
    echo "   client $c: messages ${got}($(grep -c reconnected "$work/client$c.log") reconnect)" >&2
    [ "$got" = "1 2 3 " ] || { cat "$work/client$c.out" >&2; echo "error: client $c got: $got" >&2; exit 1; }
done

echo "demo: every step worked; wsctl dev is stopping" >&2
