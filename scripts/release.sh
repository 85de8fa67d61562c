#!/usr/bin/env bash
# The release, made by one command into dist/ (nothing is published from here: the tag
# workflow in .github/workflows/release.yml publishes what this makes).
#
#   scripts/release.sh                       # Linux x86_64 and aarch64
#   TARGETS=x86_64 scripts/release.sh        # one target only
#   WSCTL_RELEASE_PROFILE=dev scripts/release.sh   # a debug CLI (tests), same handler zips
#
# What it makes, for version V of Cargo.toml:
#   dist/handler-x86_64.zip, dist/handler-arm64.zip   the deployable handler, built once by
#       `wsctl build` from this checkout (release, glibc 2.34, reproducible), and carried by
#       every wsctl below: `up` deploys it without building anything
#   dist/wsctl-V-py3-none-manylinux_2_34_{x86_64,aarch64}.whl   the Python wheels (maturin's
#       bin bindings: `pip install wsctl`, `pipx install wsctl`, `uvx wsctl`)
#   dist/wsctl-V-{x86_64,aarch64}-unknown-linux-gnu.tar.gz   the same binary as the wheel,
#       with README.md, CHANGELOG.md and LICENSE; runs on glibc 2.34 and newer
#   dist/install.sh     downloads an archive, checks its SHA-256 and installs wsctl
#   dist/SHA256SUMS     every file above
#   dist/BUILD-INFO     the commit, rustc, zig and maturin versions (what reproduces the zips)
#
# Needs Rust with rustup's targets x86_64-unknown-linux-gnu and aarch64-unknown-linux-gnu
# (added here when missing), and zig, cargo-zigbuild and maturin
# (pip install ziglang cargo-zigbuild maturin). macOS binaries are built on macOS by the tag
# workflow; this script does not make them.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
dist=${DIST:-$root/dist}
targets=${TARGETS:-x86_64 aarch64}
profile=${WSCTL_RELEASE_PROFILE:-release}
version=$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -1)
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$root/target}

need() {
    command -v "$1" >/dev/null || { echo "error: $1 is needed: $2" >&2; exit 1; }
}
need cargo "install Rust (https://rustup.rs)"
need cargo-zigbuild "pip install ziglang cargo-zigbuild"
need maturin "pip install maturin"

lambda_arch() { case $1 in x86_64) echo x86_64 ;; aarch64) echo arm64 ;; *) echo "unknown target $1" >&2; exit 2 ;; esac; }

rm -rf "$dist"
mkdir -p "$dist"

# 1. The handler zips, by `wsctl build` from this checkout: the same code path a contributor's
#    `wsctl build` takes, so the same commit gives the same CodeSha256.
echo "== the handler zips" >&2
# Any wsctl of this commit can zip it (WSCTL_HOST_BIN names one already built, as the tests do).
host_wsctl=${WSCTL_HOST_BIN:-}
if [ -z "$host_wsctl" ]; then
    cargo build --locked --bin wsctl
    host_wsctl=$CARGO_TARGET_DIR/debug/wsctl
fi
for t in $targets; do
    arch=$(lambda_arch "$t")
    if command -v rustup >/dev/null && ! rustup target list --installed | grep -qx "$t-unknown-linux-gnu"; then
        rustup target add "$t-unknown-linux-gnu"
    fi
    # In dist/, where no wsctl.toml adds a project's catalogue.
    (cd "$dist" && WSCTL_SOURCE_DIR=$root "$host_wsctl" build --arch "$arch" \
        --out "$dist/handler-$arch.zip" >&2)
done

# 2. wsctl for each target, carrying the zips: the wheel (maturin, against glibc 2.34 with
#    zig), then the archive of the wheel's own binary.
export WSCTL_HANDLER_ZIPS=$dist
for t in $targets; do
    triple=$t-unknown-linux-gnu
    echo "== wsctl for $triple ($profile)" >&2
    maturin build --locked --profile "$profile" --target "$triple" --zig \
        --compatibility manylinux_2_34 --out "$dist" >&2
    wheel=$(ls "$dist"/wsctl-"$version"-*manylinux_2_34_"$t".whl)
    stage=$(mktemp -d)
    name=wsctl-$version-$triple
    mkdir "$stage/$name"
    python3 - "$wheel" "$stage/$name/wsctl" <<'EOF'
import sys, zipfile
wheel, out = sys.argv[1], sys.argv[2]
with zipfile.ZipFile(wheel) as z:
    [entry] = [n for n in z.namelist() if n.endswith(".data/scripts/wsctl")]
    with open(out, "wb") as f:
        f.write(z.read(entry))
EOF
    chmod 0755 "$stage/$name/wsctl"
    cp README.md CHANGELOG.md LICENSE "$stage/$name/"
    # Fixed owner, order and times: the same files give the same archive.
    tar --sort=name --owner=0 --group=0 --numeric-owner --mtime='1980-01-01 00:00:00Z' \
        -C "$stage" -cf - "$name" | gzip -n -9 >"$dist/$name.tar.gz"
    rm -rf "$stage"
done

# 3. The installer, the sums and what reproduces the build.
cp scripts/install.sh "$dist/install.sh"
{
    echo "version $version"
    echo "commit $(git rev-parse HEAD 2>/dev/null || echo unknown)"
    echo "rustc $(rustc -V)"
    echo "zig $(python3 -m ziglang version 2>/dev/null || zig version 2>/dev/null || echo unknown)"
    echo "maturin $(maturin --version)"
    echo "profile $profile"
} >"$dist/BUILD-INFO"
(cd "$dist" && sha256sum -- *.zip *.whl *.tar.gz install.sh BUILD-INFO >SHA256SUMS)
echo "== dist/" >&2
(cd "$dist" && ls -l >&2 && cat SHA256SUMS)
