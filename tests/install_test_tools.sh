#!/bin/sh
# Install the programs some tests drive, from Debian's packages: a headless Chromium for the HTML
# report tests (tests/reports/test_html_report.py) and a Prometheus server that scrapes the
# exporter (tests/plugins/test_prometheus_server.py). Those tests skip when the program is absent.
# Safe to run again: installs only what is missing. Needs root (or sudo) and apt; elsewhere install
# them with your package manager and put them on PATH.
#
#   sh tests/install_test_tools.sh              # both
#   sh tests/install_test_tools.sh chromium     # one of them
set -eu

# program:package[,package...]; the program is what `command -v` looks for.
TOOLS="chromium:chromium,fonts-dejavu-core prometheus:prometheus"

wanted="${*:-chromium prometheus}"
missing=""
for tool in $TOOLS; do
    program=${tool%%:*}
    packages=$(echo "${tool#*:}" | tr ',' ' ')
    case " $wanted " in *" $program "*) ;; *) continue ;; esac
    if command -v "$program" >/dev/null 2>&1; then
        echo "$program already installed"
    else
        missing="$missing $packages"
    fi
done
[ -z "$missing" ] && exit 0

if ! command -v apt-get >/dev/null 2>&1; then
    echo "install_test_tools.sh: apt-get not found; install$missing with your package manager" >&2
    exit 1
fi
SUDO=""
if [ "$(id -u)" != "0" ]; then
    if command -v sudo >/dev/null 2>&1; then
        SUDO="sudo"
    else
        echo "install_test_tools.sh: needs root or sudo to run apt-get" >&2
        exit 1
    fi
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# shellcheck disable=SC2086 (one word per package)
$SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null
echo "installed:$missing"
