#!/usr/bin/env bash
# Makes sure headless Chromium is installed (Debian's `chromium` package) for the browser tests of
# `quarry report`. Prints the binary's path. Needs root (or sudo) the first time on a fresh machine.
set -euo pipefail

find_chromium() {
    local c
    for c in chromium chromium-browser google-chrome; do
        if command -v "$c" >/dev/null 2>&1; then
            command -v "$c"
            return 0
        fi
    done
    return 1
}

if path="$(find_chromium)"; then
    echo "$path"
    exit 0
fi

sudo=()
if [[ $(id -u) != 0 ]]; then
    command -v sudo >/dev/null 2>&1 || { echo "ensure-chromium: chromium missing and not root (no sudo)" >&2; exit 1; }
    sudo=(sudo)
fi
echo "ensure-chromium: installing Debian's chromium package" >&2
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -qq >&2
"${sudo[@]}" apt-get install -y -qq --no-install-recommends chromium fonts-dejavu-core >&2
find_chromium
