#!/usr/bin/env bash
# Benchmark (not a test): provisioning time against one moto server.
#   1. the runbook's Steps 1, 3 and 4 with the aws CLI (benches/runbook-steps.sh, no sleep 10)
#   2. `wsctl up` from nothing (the handler already built: --handler-zip)
#   3. a no-op `wsctl up` (everything exists and matches)
# Each is run RUNS times (default 5) on fresh project names; medians are printed.
#
#   benches/up.sh                      # builds wsctl (release) and the handler zip first
#   WSCTL=path/to/wsctl ZIP=handler.zip RUNS=9 benches/up.sh
#   WSCTL=path/to/installed/wsctl ZIP=carried benches/up.sh   # a release: the handler it carries
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-5}
venv=${WSCTL_VENV:-$PWD/.venv}
[ -x "$venv/bin/python" ] || { echo "run scripts/test.sh once first (it installs moto into $venv)" >&2; exit 2; }
if [ -z "${WSCTL:-}" ]; then
    cargo build --release --locked --bin wsctl >&2
    WSCTL=${CARGO_TARGET_DIR:-target}/release/wsctl
fi
if [ "${ZIP:-}" = carried ]; then
    zip_args=()
elif [ -z "${ZIP:-}" ]; then
    ZIP=$(mktemp -d)/handler.zip
    "$WSCTL" build --out "$ZIP" >&2
fi
[ "${ZIP}" = carried ] || zip_args=(--handler-zip "$ZIP")
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
MOTO_IAM_LOAD_MANAGED_POLICIES=true "$venv/bin/python" tests/support/moto_server.py -H 127.0.0.1 -p "$port" >/dev/null 2>&1 &
moto=$!
work=$(mktemp -d)
trap 'kill $moto 2>/dev/null; rm -rf "$work"' EXIT
until curl -sf "http://127.0.0.1:$port/moto-api/" >/dev/null; do sleep 0.1; done
curl -sf -X POST -d '{"lambda":{"use_docker":false}}' "http://127.0.0.1:$port/moto-api/config" >/dev/null
export AWS_ENDPOINT_URL=http://127.0.0.1:$port AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing \
       AWS_REGION=us-east-1 AWS_DEFAULT_REGION=us-east-1 AWS_EC2_METADATA_DISABLED=true PATH="$venv/bin:$PATH"

now() { python3 -c 'import time; print(time.monotonic())'; }
median() { python3 -c 'import sys,statistics; print("%.3f" % statistics.median(float(x) for x in sys.argv[1:]))' "$@"; }

runbook=(); fresh=(); noop=()
for i in $(seq 1 "$RUNS"); do
    t0=$(now); PROJECT_NAME=rb$i AWS_ACCOUNT_ID=123456789012 benches/runbook-steps.sh >/dev/null; t1=$(now)
    runbook+=("$(python3 -c "print($t1-$t0)")")
    printf 'project = "wsctl%s"\n' "$i" > "$work/wsctl.toml"
    t0=$(now); "$WSCTL" -q -c "$work/wsctl.toml" up "${zip_args[@]}" >/dev/null; t1=$(now)
    fresh+=("$(python3 -c "print($t1-$t0)")")
    t0=$(now); "$WSCTL" -q -c "$work/wsctl.toml" up "${zip_args[@]}" >/dev/null; t1=$(now)
    noop+=("$(python3 -c "print($t1-$t0)")")
done
r=$(median "${runbook[@]}"); f=$(median "${fresh[@]}"); n=$(median "${noop[@]}")
echo "runs: $RUNS (moto 5.2.5 on 127.0.0.1; python3 startup for timing adds ~20 ms to each)"
echo "runbook steps 1/3/4 (aws CLI, no sleep): median ${r} s"
echo "wsctl up from nothing:                   median ${f} s   ($(python3 -c "print('%.1fx' % ($r/$f))") faster)"
echo "wsctl up, no changes:                    median ${n} s"
