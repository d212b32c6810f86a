#!/usr/bin/env bash
# Load test of the cart example app over loopback: wrk + load/cart.lua against one store.
#
#   load/run.sh sqlite|postgres|redis [SECONDS]      (default 60)
#
# 1. builds and starts the release app (`cargo build --release -p sessions-examples --bin cart`)
#    on a free loopback port, with the store kept apart from everything else:
#      sqlite    a temporary file (deleted after);
#      postgres  a private database `sessions_load_<pid>` on the server of $LOAD_POSTGRES_URL
#                (default postgres://postgres@127.0.0.1:5432/test), dropped after: the app's
#                table name (`cart_sessions`) is fixed, so the test gets a database of its own;
#      redis     $LOAD_REDIS_URL (default redis://127.0.0.1:6379); the app's key prefix
#                (`cart:`) is fixed, so afterwards exactly the test's keys are deleted
#                (cart:{sha256(id)}, computed from the cookies) and the count of cart:* keys is
#                checked to be back where it was;
# 2. creates $LOAD_SESSIONS (10000) sessions through the API (load/sessions.py create);
# 3. runs wrk -t $LOAD_THREADS (2) -c $LOAD_CONNECTIONS (64) --latency --timeout 2s for SECONDS,
#    READ_PERCENT (70) % GET /api/cart, the rest add/remove an item (see load/cart.lua; reads
#    only in the last 3 s), while sampling the app's VmRSS every 2 s;
# 4. reads every cart back and checks each is exactly what the script wrote (load/sessions.py
#    verify), checks the app's log for WARN/ERROR lines, cleans up.
#
# Prints the figures and appends one line to $LOAD_SUMMARY if set (for .ci/load.sh). Exits 1
# when any answer was not 200, any socket error or timeout happened, or a cart was lost.
set -euo pipefail
cd "$(dirname "$0")/.."

store="${1:-}"
seconds="${2:-60}"
case "$store" in sqlite | postgres | redis) ;; *)
  echo "usage: load/run.sh sqlite|postgres|redis [SECONDS]" >&2
  exit 2
  ;;
esac
sessions="${LOAD_SESSIONS:-10000}"
threads="${LOAD_THREADS:-2}"
connections="${LOAD_CONNECTIONS:-64}"
export READ_PERCENT="${READ_PERCENT:-70}"
pg_url="${LOAD_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/test}"
redis_url="${LOAD_REDIS_URL:-redis://127.0.0.1:6379}"
for tool in wrk python3 curl; do
  command -v "$tool" >/dev/null || { echo "load: $tool is missing (apt-get install -y wrk python3 curl)" >&2; exit 2; }
done

cargo build --release --quiet -p sessions-examples --bin cart
bin="$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')/release/cart"

dir="$(mktemp -d -t sessions-load.XXXXXX)"
app_pid="" sampler_pid="" pg_db="" redis_before=""
redis_host="$(python3 -c 'import sys,urllib.parse as u; p=u.urlsplit(sys.argv[1]); print(p.hostname, p.port or 6379)' "$redis_url")"
rcli() { redis-cli -h "${redis_host% *}" -p "${redis_host#* }" "$@"; }
psql_on() { psql "$1" -X -q -At -v ON_ERROR_STOP=1 -c "$2"; }
cleanup() {
  set +e
  [ -n "$sampler_pid" ] && kill "$sampler_pid" 2>/dev/null
  if [ -n "$app_pid" ] && kill -0 "$app_pid" 2>/dev/null; then
    kill -TERM "$app_pid"
    for _ in $(seq 1 50); do kill -0 "$app_pid" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$app_pid" 2>/dev/null && kill -KILL "$app_pid"
  fi
  if [ -n "$pg_db" ]; then
    psql_on "$pg_url" "DROP DATABASE IF EXISTS $pg_db WITH (FORCE)" && echo "cleanup: dropped database $pg_db"
  fi
  if [ "$store" = redis ] && [ -s "$dir/sessions.txt" ]; then
    deleted="$(python3 load/sessions.py keys "$dir/sessions.txt" 'cart:' | xargs -n 500 redis-cli -h "${redis_host% *}" -p "${redis_host#* }" DEL | awk '{s+=$1} END {print s+0}')"
    after="$(rcli --scan --pattern 'cart:*' | wc -l)"
    echo "cleanup: deleted $deleted Redis keys of this test; cart:* keys before $redis_before, now $after"
  fi
  rm -rf "$dir"
}
trap cleanup EXIT

case "$store" in
  sqlite) store_args=(--store sqlite --db "$dir/load.db") ;;
  postgres)
    pg_db="sessions_load_$$"
    psql_on "$pg_url" "CREATE DATABASE $pg_db"
    store_args=(--store postgres --database-url "${pg_url%/*}/$pg_db")
    ;;
  redis)
    redis_before="$(rcli --scan --pattern 'cart:*' | wc -l)"
    store_args=(--store redis --redis-url "$redis_url")
    ;;
esac

RUST_LOG="${RUST_LOG:-info,sqlx=warn}" "$bin" "${store_args[@]}" --port 0 >"$dir/app.out" 2>"$dir/app.err" &
app_pid=$!
url=""
for _ in $(seq 1 100); do
  url="$(sed -n 's/^cart shop serving on //p' "$dir/app.out")"
  [ -n "$url" ] && break
  kill -0 "$app_pid" 2>/dev/null || { cat "$dir/app.err" >&2; exit 1; }
  sleep 0.1
done
[ -n "$url" ] || { echo "load: the app did not start" >&2; cat "$dir/app.err" >&2; exit 1; }
rss() { awk '/^VmRSS:/ {print $2}' "/proc/$app_pid/status"; }
# the app's CPU time (user + system) in clock ticks
cpu_ticks() { awk '{print $14 + $15}' "/proc/$app_pid/stat"; }
rss_launch="$(rss)"
echo "== $store: app pid $app_pid at $url ($(sed -n 's/^sessions: //p' "$dir/app.out")), RSS ${rss_launch} kB"

python3 load/sessions.py create "$url" "$sessions" "$dir/sessions.txt"
rss_ready="$(rss)"

# VmRSS every 2 s: "<seconds since wrk started> <kB>"
(
  start=$(date +%s.%N)
  while kill -0 "$app_pid" 2>/dev/null; do
    echo "$(awk -v s="$start" -v n="$(date +%s.%N)" 'BEGIN {printf "%.0f", n - s}') $(rss)"
    sleep 2
  done
) >"$dir/rss.txt" &
sampler_pid=$!

cpu_before="$(cpu_ticks)"
echo "== wrk -t$threads -c$connections -d${seconds}s --latency --timeout 2s -s load/cart.lua $url -- $threads <sessions file> $seconds  (READ_PERCENT=$READ_PERCENT)"
LOAD_RESULT="$dir/result.txt" LOAD_STATE="$dir/state.txt" \
  wrk -t"$threads" -c"$connections" -d"${seconds}s" --latency --timeout 2s \
  -s load/cart.lua "$url" -- "$threads" "$dir/sessions.txt" "$seconds" | tee "$dir/wrk.txt"
rss_end="$(rss)"
app_cpu="$(awk -v a="$cpu_before" -v b="$(cpu_ticks)" -v hz="$(getconf CLK_TCK)" -v s="$seconds" 'BEGIN {printf "%.0f", (b - a) / hz / s * 100}')"
kill "$sampler_pid" 2>/dev/null || true
wait "$sampler_pid" 2>/dev/null || true
sampler_pid=""

get() { sed -n "s/^$1=//p" "$dir/result.txt"; }
# the RSS sample nearest to half-way (30 s of a 60 s run)
rss_mid="$(awk -v h=$((seconds / 2)) 'BEGIN {best = -1} {d = $1 - h; if (d < 0) d = -d; if (best < 0 || d < best) {best = d; v = $2}} END {print v}' "$dir/rss.txt")"
rss_max="$(awk 'BEGIN {m = 0} $2 > m {m = $2} END {print m}' "$dir/rss.txt")"
echo "== RSS samples (s kB): $(tr '\n' ' ' <"$dir/rss.txt")"

verify_status=0
# writes stop 3 s before the end (cart.lua), so every cart must be exactly as the script expects
python3 load/sessions.py verify "$url" "$dir/sessions.txt" "$dir/state.txt" 0 || verify_status=1
log_errors="$(grep -cE ' (ERROR|WARN) ' "$dir/app.err" || true)"
if [ "$log_errors" != 0 ]; then
  echo "== app log: $log_errors WARN/ERROR lines, first ones:"
  grep -E ' (ERROR|WARN) ' "$dir/app.err" | head -5
fi

non2xx="$(get non_2xx_3xx)" non200="$(get non_200)" sockerr="$(get socket_errors)"
printf '== %s: %s req/s (%s requests in %s s), p50 %s ms, p99 %s ms, max %s ms; non-2xx/3xx %s, non-200 %s (%s), socket errors %s (%s); RSS kB: launch %s, %s sessions %s, +%ss %s, end %s, max %s; app CPU %s%% of one core\n' \
  "$store" "$(get rps)" "$(get requests)" "$(get seconds)" "$(get p50_ms)" "$(get p99_ms)" "$(get max_ms)" \
  "$non2xx" "$non200" "$(get statuses)" "$sockerr" "$(get socket_errors_detail)" \
  "$rss_launch" "$sessions" "$rss_ready" $((seconds / 2)) "$rss_mid" "$rss_end" "$rss_max" "$app_cpu"
if [ -n "${LOAD_SUMMARY:-}" ]; then
  printf '%s|%s|%s|%s|%s|%s|%s|%s|%s|%s|%s|%s|%s\n' "$store" "$(get rps)" "$(get p50_ms)" "$(get p99_ms)" \
    "$non2xx" "$sockerr" "$rss_ready" "$rss_mid" "$rss_end" "$rss_max" "$app_cpu" \
    "$([ "$verify_status" = 0 ] && echo ok || echo FAILED)" "$log_errors" >>"$LOAD_SUMMARY"
fi
[ "$non2xx" = 0 ] && [ "$non200" = 0 ] && [ "$sockerr" = 0 ] && [ "$verify_status" = 0 ]
