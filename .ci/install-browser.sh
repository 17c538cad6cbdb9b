#!/usr/bin/env bash
# Install what tests/stac/publish/test_view_browser.py needs: headless Chromium and its driver
# (Debian packages chromium and chromium-driver; apt-get needs root, as CI is). selenium comes
# with the dev extra of pyproject.toml.
# Idempotent: when both are installed it only checks. Without root it says so and exits 1; the
# browser tests then skip with the reason (unless COALIGN_REQUIRE_BROWSER is set).
set -euo pipefail

LOG=$(mktemp -t coalign-install-browser.XXXXXX)
trap 'rm -f "$LOG"' EXIT

fail() { echo "install-browser: $*" >&2; tail -n 40 "$LOG" >&2 || true; exit 1; }

have_browser() {
  { command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1; } \
    && command -v chromedriver >/dev/null 2>&1
}

if have_browser; then
  exit 0
fi
[ "$(id -u)" -eq 0 ] || fail "Chromium or chromedriver missing and not root: run as root, or: apt-get install chromium chromium-driver"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >>"$LOG" 2>&1 || fail "apt-get update failed"
apt-get install -y -qq --no-install-recommends chromium chromium-driver >>"$LOG" 2>&1 \
  || fail "installing chromium chromium-driver failed"
have_browser || fail "chromium or chromedriver still missing after installing them"
echo "install-browser: $(chromium --version 2>/dev/null || chromium-browser --version)"
