#!/bin/sh
# Installs wsctl from a release: downloads the archive for this machine, checks it against the
# release's SHA256SUMS, and puts `wsctl` in ~/.local/bin (or $WSCTL_INSTALL_DIR). No Rust, no
# zig: the handler that `wsctl up` deploys is inside the binary.
#
#   curl -fsSL https://github.com/wsctl/wsctl/releases/latest/download/install.sh | sh
#   WSCTL_VERSION=0.1.0 sh install.sh            # a given version
#   WSCTL_DOWNLOAD_URL=file:///path/to/dist sh install.sh   # from a directory of artifacts
#
# Linux x86_64 and aarch64 with glibc 2.34 or newer. On macOS, or anywhere with Python:
# `pipx install wsctl` or `uvx wsctl`.
set -eu

repo=${WSCTL_REPO:-wsctl/wsctl}
version=${WSCTL_VERSION:-latest}
dir=${WSCTL_INSTALL_DIR:-$HOME/.local/bin}

fail() { echo "wsctl install: $*" >&2; exit 1; }

case "$(uname -s)" in
    Linux) ;;
    *) fail "this installer is for Linux; on $(uname -s) use: pipx install wsctl" ;;
esac
case "$(uname -m)" in
    x86_64 | amd64) arch=x86_64 ;;
    aarch64 | arm64) arch=aarch64 ;;
    *) fail "no release for $(uname -m) (x86_64 and aarch64 only)" ;;
esac
if command -v ldd >/dev/null 2>&1; then
    glibc=$(ldd --version 2>&1 | head -n1 | grep -oE '[0-9]+\.[0-9]+$' || true)
    case "$glibc" in
        2.[0-9] | 2.[12][0-9] | 2.3[0-3]) fail "wsctl needs glibc 2.34 or newer; this system has $glibc (use: pipx install wsctl on a newer system)" ;;
    esac
fi

if [ -n "${WSCTL_DOWNLOAD_URL:-}" ]; then
    base=$WSCTL_DOWNLOAD_URL
elif [ "$version" = latest ]; then
    base=https://github.com/$repo/releases/latest/download
else
    base=https://github.com/$repo/releases/download/v$version
fi

fetch() {
    if command -v curl >/dev/null 2>&1; then
        curl -fsSL "$1" -o "$2"
    elif command -v wget >/dev/null 2>&1; then
        wget -q "$1" -O "$2"
    else
        fail "needs curl or wget"
    fi
}

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fetch "$base/SHA256SUMS" "$tmp/SHA256SUMS" || fail "cannot download $base/SHA256SUMS"
archive=$(grep -oE "wsctl-[^ ]+-$arch-unknown-linux-gnu\.tar\.gz" "$tmp/SHA256SUMS" | head -n1)
[ -n "$archive" ] || fail "the release at $base has no archive for $arch"
fetch "$base/$archive" "$tmp/$archive" || fail "cannot download $base/$archive"
(cd "$tmp" && grep " $archive\$" SHA256SUMS | sha256sum -c - >/dev/null) \
    || fail "$archive does not match the release's SHA256SUMS: not installed"
tar -xzf "$tmp/$archive" -C "$tmp"
mkdir -p "$dir"
install -m 0755 "$tmp/${archive%.tar.gz}/wsctl" "$dir/wsctl"
echo "installed $("$dir/wsctl" --version | head -n1) to $dir/wsctl" >&2
case ":$PATH:" in
    *":$dir:"*) ;;
    *) echo "add $dir to your PATH" >&2 ;;
esac
