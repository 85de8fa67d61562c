#!/usr/bin/env bash
# Benchmark of one broadcast by the release `bootstrap` through `wsctl dev`'s throttled
# management API (see benches/broadcast.rs): builds both release binaries, then runs it.
# N clients need N open files on both sides (and `wsctl dev` also holds the function's
# management connections): the limit is raised as far as the hard limit allows.
set -euo pipefail
cd "$(dirname "$0")/.."
hard=$(ulimit -Hn)
if [ "$hard" = unlimited ] || [ "$hard" -gt 200000 ]; then hard=200000; fi
ulimit -n "$hard"
cargo build --release --locked --bin wsctl
cargo build --release --locked -p wsctl-handler --bin bootstrap
exec cargo bench --locked --bench broadcast "$@"
