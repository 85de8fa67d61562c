#!/usr/bin/env bash
# The whole test suite. Installs the AWS emulator (moto 5.2.5, in server mode) and the aws CLI
# into a virtualenv when missing (with zig, cargo-zigbuild and maturin, which the release test
# uses), cargo-deny into WSCTL_TOOLS (scripts/deny.sh, the dependency check), and the npm packages of tests/runbook-react, tests/asyncapi
# (the AsyncAPI parser) and clients/react (Node.js 20+), and Debian's openssl (certificates for the TLS tests) and
# Chromium (the React client's browser test), through apt-get when they are missing and this
# user is root or has sudo; otherwise it stops and names the package. The tests start and stop moto and `wsctl dev` themselves.
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
# The release's tools (tests/release.rs runs scripts/release.sh): zig, cargo-zigbuild, maturin.
if [ ! -x "$venv/bin/maturin" ] || [ ! -x "$venv/bin/cargo-zigbuild" ] \
    || ! "$venv/bin/python" -c 'import ziglang' 2>/dev/null; then
    echo "installing ziglang, cargo-zigbuild and maturin into $venv" >&2
    "$venv/bin/pip" install --quiet --disable-pip-version-check 'ziglang==0.17.1' \
        'cargo-zigbuild==0.24.1' 'maturin==1.16.0'
fi
if [ ! -d tests/runbook-react/node_modules/react ]; then
    echo "installing the runbook React hook check's packages (npm ci)" >&2
    (cd tests/runbook-react && npm ci --no-audit --no-fund --loglevel=error)
fi
if [ ! -d tests/asyncapi/node_modules/@asyncapi/parser ]; then
    echo "installing the AsyncAPI document check's packages (npm ci)" >&2
    (cd tests/asyncapi && npm ci --no-audit --no-fund --loglevel=error)
fi
if [ ! -d clients/react/node_modules/react ]; then
    echo "installing the React client's packages (npm ci)" >&2
    (cd clients/react && npm ci --no-audit --no-fund --loglevel=error)
fi
# Installs a Debian package with apt-get, as root or with sudo -n; fails when it cannot.
apt_install() {
    local pkg=$1 sudo_=""
    command -v apt-get >/dev/null || return 1
    if [ "$(id -u)" != 0 ]; then
        sudo -n true 2>/dev/null || return 1
        sudo_="sudo -n"
    fi
    echo "installing Debian's $pkg (apt-get install $pkg)" >&2
    DEBIAN_FRONTEND=noninteractive $sudo_ apt-get install -y -q "$pkg" >/dev/null 2>&1 \
        || { $sudo_ apt-get update -q >/dev/null \
            && DEBIAN_FRONTEND=noninteractive $sudo_ apt-get install -y -q "$pkg" >/dev/null; }
}
# The openssl command makes the certificates of the wss:// load test and the custom domain's.
if ! command -v openssl >/dev/null; then
    apt_install openssl || true
    if ! command -v openssl >/dev/null; then
        echo "error: the tests need the openssl command: install Debian's package 'openssl'" \
            "(apt-get install openssl, as root)" >&2
        exit 1
    fi
fi
# The browser test's Chromium, checked (and installed) before the long cargo test run.
chromium=${CHROMIUM:-/usr/bin/chromium}
if [ $# -eq 0 ] && [ "${WSCTL_SKIP_BROWSER:-}" != 1 ]; then
    if [ ! -x "$chromium" ] && [ "$chromium" = /usr/bin/chromium ]; then
        apt_install chromium || true
    fi
    if [ ! -x "$chromium" ]; then
        echo "error: the browser test needs Chromium at $chromium: install Debian's package" \
            "'chromium' (apt-get install chromium, as root), or set CHROMIUM to a Chromium binary," \
            "or WSCTL_SKIP_BROWSER=1 to skip this test" >&2
        exit 1
    fi
fi
export MOTO_PYTHON="$venv/bin/python"
export PATH="$venv/bin:$PATH"
# Dependencies: advisories (offline snapshot), licenses, bans, sources (deny.toml).
[ $# -ne 0 ] || scripts/deny.sh
cargo test --workspace --all-targets --locked --no-fail-fast "$@"
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
CHROMIUM="$chromium" node e2e/browser.test.mjs
