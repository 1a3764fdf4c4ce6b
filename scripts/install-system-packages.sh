#!/bin/sh
# Debian packages the tests drive for real: Chromium (browser tests), PostgreSQL (review
# store) and Node.js with npm (the OpenID Connect provider the sign-in tests start). Installed only when missing; needs root or sudo.
set -e
missing=""
[ -x /usr/bin/chromium ] || missing="$missing chromium"
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing="$missing postgresql"
command -v node >/dev/null 2>&1 || missing="$missing nodejs"
command -v npm >/dev/null 2>&1 || missing="$missing npm"
[ -z "$missing" ] && exit 0
if [ "$(id -u)" = 0 ]; then
    SUDO=""
elif command -v sudo >/dev/null 2>&1; then
    SUDO="sudo"
else
    echo "Missing Debian packages:$missing. Install them as root: apt-get install$missing" >&2
    echo "Tests that need them will be skipped." >&2
    exit 0
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null
