#!/usr/bin/env bash
# Benchmark of `wsctl dev` (see benches/dev_load.rs): 10,000 connections need more open files
# than the default limit on both sides (the load client and the gateway it spawns).
set -euo pipefail
cd "$(dirname "$0")/.."
hard=$(ulimit -Hn)
if [ "$hard" = unlimited ] || [ "$hard" -gt 65536 ]; then hard=65536; fi
ulimit -n "$hard"
exec cargo bench --locked --bench dev_load "$@"
