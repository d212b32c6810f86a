#!/usr/bin/env bash
# The cart shop's browser test: headless Chromium through chromedriver, against the `cart`
# binary on axum and then on actix-web (the shop, a restart, login, logout and its flash, and
# "Your sessions" with two browsers). Installs Debian's chromium and chromium-driver when
# missing, then runs the test with SESSIONS_E2E_REQUIRED=1, so a missing browser fails the run
# instead of skipping the test. Screenshots: target/tmp/e2e-{cart,sessions}-{axum,actix}.png.
set -euo pipefail
cd "$(dirname "$0")/.."

export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"

have() { command -v "$1" >/dev/null 2>&1; }

if ! have chromium || ! have chromedriver; then
  echo "==> installing chromium and chromium-driver"
  if ! have apt-get; then
    echo "e2e: chromium or chromedriver is missing and apt-get is not available" >&2
    exit 1
  fi
  SUDO=""
  if [ "$(id -u)" -ne 0 ]; then
    SUDO="sudo"
  fi
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends chromium chromium-driver
fi
have chromium && have chromedriver || { echo "e2e: chromium or chromedriver is still missing" >&2; exit 1; }
chromedriver --version

echo "==> cargo test -p sessions-examples --test e2e_browser (SESSIONS_E2E_REQUIRED=1)"
SESSIONS_E2E_REQUIRED=1 cargo test -p sessions-examples --test e2e_browser -- --nocapture
