#!/bin/sh
# Install Prometheus from Debian's packages for tests/plugins/test_prometheus_server.py (a real
# server scraping the exporter) and promtool's lint. Safe to run again: does nothing when present.
# Needs root (or sudo) and apt; elsewhere install Prometheus by hand and put it on PATH.
set -eu

if command -v prometheus >/dev/null 2>&1 && command -v promtool >/dev/null 2>&1; then
    echo "prometheus already installed: $(prometheus --version 2>&1 | head -1)"
    exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
    echo "install_prometheus.sh: apt-get not found; install Prometheus with your package manager" >&2
    exit 1
fi
SUDO=""
if [ "$(id -u)" != "0" ]; then
    if command -v sudo >/dev/null 2>&1; then
        SUDO="sudo"
    else
        echo "install_prometheus.sh: needs root or sudo to run apt-get" >&2
        exit 1
    fi
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# The package's post-install starts a service where systemd runs; the tests start their own server.
$SUDO apt-get install -y -qq --no-install-recommends prometheus >/dev/null
echo "installed: $(prometheus --version 2>&1 | head -1)"
