#!/usr/bin/env bash
# Debian's Chromium for the console's browser tests (Playwright drives /usr/bin/chromium;
# no `playwright install` download). Installs it with apt-get when it is missing.
set -euo pipefail
if [ -x /usr/bin/chromium ]; then
  exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "Chromium is missing and apt-get is not available: install chromium at /usr/bin/chromium" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq chromium >/dev/null
test -x /usr/bin/chromium
