#!/bin/sh
# Install a headless Chromium from Debian's packages for the HTML report tests
# (tests/reports/test_html_report.py). Safe to run again: does nothing when chromium is present.
# Needs root (or sudo) and apt; on other systems install Chromium by hand and put it on PATH,
# or point CARBONKIT_TEST_CHROMIUM at its binary.
set -eu

if command -v chromium >/dev/null 2>&1; then
    echo "chromium already installed: $(chromium --version 2>/dev/null || echo unknown version)"
    exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
    echo "install_chromium.sh: apt-get not found; install Chromium with your package manager" >&2
    exit 1
fi
SUDO=""
if [ "$(id -u)" != "0" ]; then
    if command -v sudo >/dev/null 2>&1; then
        SUDO="sudo"
    else
        echo "install_chromium.sh: needs root or sudo to run apt-get" >&2
        exit 1
    fi
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
apt-cache policy chromium | sed -n '1,3p'
$SUDO apt-get install -y -qq --no-install-recommends chromium fonts-dejavu-core >/dev/null
echo "installed: $(chromium --version)"
