#!/usr/bin/env bash
# The browser tests drive Debian's Chromium through Playwright (no browser download of Playwright's own).
# Install the package when it is missing; CHROMIUM_PATH points the tests elsewhere.
set -eu
path=${CHROMIUM_PATH:-/usr/bin/chromium}
if [ -x "$path" ]; then exit 0; fi
echo "ensure_browser: $path is missing; installing Debian's chromium" >&2
if [ "$(id -u)" -ne 0 ]; then
  echo "ensure_browser: run as root or 'sudo apt-get install -y chromium' first" >&2; exit 1
fi
apt-get update -q >/dev/null
DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium >/dev/null
[ -x "$path" ] || { echo "ensure_browser: chromium is still missing at $path" >&2; exit 1; }
