#!/usr/bin/env bash
# The whole test suite. Installs the AWS emulator (moto 5.2.5, in server mode) and the aws CLI
# into a virtualenv when missing, and the npm packages of tests/runbook-react (Node.js 20+); the
# tests start and stop moto themselves.
#
#   scripts/test.sh                 # everything
#   scripts/test.sh --test up       # extra arguments go to cargo test
#
# WSCTL_VENV picks the virtualenv (default .venv in the checkout).
set -euo pipefail
cd "$(dirname "$0")/.."
venv=${WSCTL_VENV:-$PWD/.venv}
if ! "$venv/bin/python" -c 'import moto, boto3, awscli; assert moto.__version__ == "5.2.5"' 2>/dev/null; then
    echo "installing moto[server] 5.2.5, boto3 and the aws CLI into $venv" >&2
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check 'moto[server]==5.2.5' boto3 awscli websockets
fi
if [ ! -d tests/runbook-react/node_modules/react ]; then
    echo "installing the runbook React hook check's packages (npm ci)" >&2
    (cd tests/runbook-react && npm ci --no-audit --no-fund --loglevel=error)
fi
export MOTO_PYTHON="$venv/bin/python"
export PATH="$venv/bin:$PATH"
exec cargo test --workspace --all-targets --locked "$@"
