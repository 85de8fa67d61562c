#!/usr/bin/env bash
# The whole test suite. Installs the AWS emulator (moto 5.2.5, in server mode) and the aws CLI
# into a virtualenv when missing, and the npm packages of tests/runbook-react and
# clients/react (Node.js 20+); the tests start and stop moto and `wsctl dev` themselves.
# The React client's browser test needs Chromium (Debian: apt-get install chromium).
#
#   scripts/test.sh                 # everything: cargo test, then the React client's tests
#   scripts/test.sh --test up       # extra arguments go to cargo test, and only it runs
#
# WSCTL_VENV picks the virtualenv (default .venv in the checkout); CHROMIUM the browser
# (default /usr/bin/chromium); WSCTL_SKIP_BROWSER=1 skips the browser test on purpose.
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
if [ ! -d clients/react/node_modules/react ]; then
    echo "installing the React client's packages (npm ci)" >&2
    (cd clients/react && npm ci --no-audit --no-fund --loglevel=error)
fi
export MOTO_PYTHON="$venv/bin/python"
export PATH="$venv/bin:$PATH"
cargo test --workspace --all-targets --locked "$@"
[ $# -eq 0 ] || exit 0

# The React client: types, the ESM build, unit tests, then a real browser against wsctl dev.
cargo build --locked --bin wsctl
export WSCTL_BIN="${CARGO_TARGET_DIR:-$PWD/target}/debug/wsctl"
cd clients/react
npm run --silent typecheck
npm run --silent build
npx vitest run
if [ "${WSCTL_SKIP_BROWSER:-}" = 1 ]; then
    echo "WSCTL_SKIP_BROWSER=1: the browser test of clients/react was skipped" >&2
    exit 0
fi
chromium=${CHROMIUM:-/usr/bin/chromium}
if [ ! -x "$chromium" ]; then
    echo "error: the browser test needs Chromium at $chromium (Debian: apt-get install chromium;" \
        "or set CHROMIUM, or WSCTL_SKIP_BROWSER=1 to skip it)" >&2
    exit 1
fi
CHROMIUM="$chromium" node e2e/browser.test.mjs
