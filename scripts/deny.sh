#!/usr/bin/env bash
# The dependency check: cargo-deny (installed into $WSCTL_TOOLS when missing) with deny.toml's
# policy: advisories, licenses, banned and duplicate crates, sources. Offline: the RustSec
# advisory database is read from a git bundle, by default the snapshot committed at
# .ci/rustsec-advisory-db.bundle (RustSec's advisory-db as of the commit .ci/README.md names);
# WSCTL_ADVISORY_DB names another bundle or clone. A new advisory in a newer snapshot then
# fails this check, and so CI, rather than a user.
#
#   scripts/deny.sh                 # part of scripts/test.sh
set -euo pipefail
cd "$(dirname "$0")/.."
tools=${WSCTL_TOOLS:-$PWD/.tools}
version=0.20.2
deny=$tools/bin/cargo-deny
if ! "$deny" --version 2>/dev/null | grep -q " $version\$"; then
    echo "installing cargo-deny $version into $tools (cargo install, a few minutes once)" >&2
    cargo install --quiet --locked --root "$tools" cargo-deny --version "$version"
fi
db=${WSCTL_ADVISORY_DB:-$PWD/.ci/rustsec-advisory-db.bundle}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# cargo-deny reads its default database (github.com/RustSec/advisory-db) from
# db-path/advisory-db-3157b0e258782691 (the name 0.20.2 derives from that URL) and, offline,
# takes it as fetched when its HEAD was just written: a clone of the snapshot is that.
git -c init.defaultBranch=main clone --quiet "$db" "$work/db/advisory-db-3157b0e258782691"
python3 - deny.toml "$work/deny.toml" "$work/db" <<'PY'
import sys
src, out, path = sys.argv[1:]
text = open(src).read()
marker = "[advisories]\n"
assert marker in text, "deny.toml has no [advisories] section"
text = text.replace(marker, f'{marker}db-path = "{path}"\n', 1)
open(out, "w").write(text)
PY
echo "checking dependencies (cargo-deny $version; advisories as of $(git -C "$work/db/advisory-db-3157b0e258782691" log -1 --format='%h %cs'))" >&2
"$deny" --offline --config "$work/deny.toml" check --hide-inclusion-graph advisories bans licenses sources
