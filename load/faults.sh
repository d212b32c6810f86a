#!/usr/bin/env bash
# Store faults under load (issue 7): the cart app under wrk while its Redis or PostgreSQL dies
# for 10 s and comes back, against a PRIVATE server started for the test (the shared servers
# on 6379/5432 are never touched).
#
#   load/faults.sh redis|postgres [SECONDS]       (default 30; the store is down from
#                                                  SECONDS/3 to 2*SECONDS/3)
#
# 1. starts a private server on a free loopback port in a temporary directory:
#      redis     redis-server --port P --bind 127.0.0.1 --save "" --appendonly no (no
#                persistence: a killed Redis comes back EMPTY, so its sessions are lost);
#      postgres  initdb (as the postgres user) + pg_ctl start (-p P, socket in the directory,
#                listen_addresses=127.0.0.1); fsync stays on, so acknowledged commits survive;
# 2. builds and starts the release app against it, creates $LOAD_SESSIONS (10000) sessions;
# 3. runs wrk -t C -c C ($LOAD_CONNECTIONS, 64; one connection per thread, see load/faults.lua)
#    --timeout $LOAD_TIMEOUT (5s: longer than PostgresStore's 2 s acquire timeout, after which a
#    request whose server is down gets its 503; a client that gives up first sees a timeout
#    instead) with load/faults.lua for SECONDS; at SECONDS/3 kills the server
#    (redis: SIGKILL; postgres: pg_ctl stop -m immediate, a crash), at 2*SECONDS/3 starts it
#    again on the same port and notes when it answers;
# 4. load/faults_report.py: answers per phase (before / down / after), 503s without an
#    x-session-error message, 500s, socket errors, recovery time, acknowledged writes;
# 5. reads every cart back (load/sessions.py verify): each must be exactly what the client was
#    acknowledged last (the client follows a new session cookie when the app issues one).
#
# Pass: only 200 before; only 200 or 503-with-message while down (no other status, no socket
# error); 200 again after without restarting the app; no contradicting 200 at any time; for
# PostgreSQL no lost acknowledged write at all; and the final read-back all as expected.
set -euo pipefail
cd "$(dirname "$0")/.."

store="${1:-}"
seconds="${2:-30}"
case "$store" in postgres | redis) ;; *)
  echo "usage: load/faults.sh redis|postgres [SECONDS]" >&2
  exit 2
  ;;
esac
[ "$seconds" -ge 12 ] || { echo "faults: SECONDS must be at least 12" >&2; exit 2; }
sessions="${LOAD_SESSIONS:-10000}"
connections="${LOAD_CONNECTIONS:-64}"
timeout="${LOAD_TIMEOUT:-5s}"
export READ_PERCENT="${READ_PERCENT:-70}"
for tool in wrk python3 curl; do
  command -v "$tool" >/dev/null || { echo "faults: $tool is missing" >&2; exit 2; }
done

cargo build --release --quiet -p sessions-examples --bin cart
bin="$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')/release/cart"

dir="$(mktemp -d -t sessions-faults.XXXXXX)"
chmod 755 "$dir"
app_pid="" wrk_pid="" redis_pid="" pg_data="" pg_bin=""
port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
ms() { date +%s%3N; }

redis_start() {
  redis-server --port "$port" --bind 127.0.0.1 --save "" --appendonly no --dir "$dir/redis" \
    --daemonize no >>"$dir/redis.log" 2>&1 &
  redis_pid=$!
}
redis_ready() { [ "$(redis-cli -h 127.0.0.1 -p "$port" ping 2>/dev/null)" = PONG ]; }
pg() { runuser -u postgres -- "$pg_bin/$1" "${@:2}"; }
pg_start() {
  pg pg_ctl -D "$pg_data" -l "$dir/pg/server.log" -w -o "-p $port -k $pg_data -c listen_addresses=127.0.0.1" start >/dev/null
}
pg_ready() { pg pg_isready -q -h 127.0.0.1 -p "$port" 2>/dev/null; }
server_ready() { if [ "$store" = redis ]; then redis_ready; else pg_ready; fi; }
server_kill() {
  if [ "$store" = redis ]; then
    kill -KILL "$redis_pid"
    wait "$redis_pid" 2>/dev/null || true
    redis_pid=""
  else
    pg pg_ctl -D "$pg_data" -m immediate stop >/dev/null
  fi
}
server_start() { if [ "$store" = redis ]; then redis_start; else pg_start; fi; }

cleanup() {
  set +e
  [ -n "$wrk_pid" ] && kill "$wrk_pid" 2>/dev/null
  if [ -n "$app_pid" ] && kill -0 "$app_pid" 2>/dev/null; then
    kill -TERM "$app_pid"
    for _ in $(seq 1 50); do kill -0 "$app_pid" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$app_pid" 2>/dev/null && kill -KILL "$app_pid"
  fi
  if [ -n "$redis_pid" ]; then
    kill -KILL "$redis_pid" 2>/dev/null
    wait "$redis_pid" 2>/dev/null
    echo "cleanup: private Redis on port $port killed"
  fi
  if [ -n "$pg_data" ] && [ -f "$pg_data/postmaster.pid" ]; then
    pg pg_ctl -D "$pg_data" -m immediate stop >/dev/null 2>&1
    echo "cleanup: private PostgreSQL on port $port stopped"
  fi
  if [ -n "${FAULTS_KEEP:-}" ]; then echo "cleanup: kept $dir"; else rm -rf "$dir"; fi
}
trap cleanup EXIT

case "$store" in
  redis)
    mkdir -p "$dir/redis"
    redis_start
    store_args=(--store redis --redis-url "redis://127.0.0.1:$port")
    ;;
  postgres)
    pg_bin="$(dirname "$(ls /usr/lib/postgresql/*/bin/initdb | sort -V | tail -1)")"
    mkdir -p "$dir/pg"
    pg_data="$dir/pg/data"
    chown -R postgres: "$dir/pg"
    pg initdb -D "$pg_data" -A trust -U postgres >"$dir/pg/initdb.log" 2>&1 \
      || { cat "$dir/pg/initdb.log" >&2; exit 1; }
    pg_start
    store_args=(--store postgres --database-url "postgres://postgres@127.0.0.1:$port/postgres")
    ;;
esac
for _ in $(seq 1 100); do server_ready && break; sleep 0.1; done
server_ready || { echo "faults: the private $store did not start" >&2; exit 1; }
echo "== private $store on 127.0.0.1:$port ($dir)"

RUST_LOG="${RUST_LOG:-info,sqlx=warn}" "$bin" "${store_args[@]}" --port 0 >"$dir/app.out" 2>"$dir/app.err" &
app_pid=$!
url=""
for _ in $(seq 1 100); do
  url="$(sed -n 's/^cart shop serving on //p' "$dir/app.out")"
  [ -n "$url" ] && break
  kill -0 "$app_pid" 2>/dev/null || { cat "$dir/app.err" >&2; exit 1; }
  sleep 0.1
done
[ -n "$url" ] || { echo "faults: the app did not start" >&2; cat "$dir/app.err" >&2; exit 1; }
echo "== app pid $app_pid at $url ($(sed -n 's/^sessions: //p' "$dir/app.out"))"

python3 load/sessions.py create "$url" "$((sessions + 1))" "$dir/all.txt"
# the first session is the probe's (curl while the store is down), the rest are wrk's
head -1 "$dir/all.txt" >"$dir/probe.txt"
tail -n +2 "$dir/all.txt" >"$dir/sessions.txt"

down_at=$((seconds / 3)) up_at=$((2 * seconds / 3))
echo "== wrk -t$connections -c$connections -d${seconds}s --timeout $timeout -s load/faults.lua $url -- $connections <sessions> $seconds  (READ_PERCENT=$READ_PERCENT); $store killed at ${down_at}s, restarted at ${up_at}s"
LOAD_RESULT="$dir/result.txt" LOAD_STATE="$dir/state.txt" \
  wrk -t"$connections" -c"$connections" -d"${seconds}s" --timeout "$timeout" \
  -s load/faults.lua "$url" -- "$connections" "$dir/sessions.txt" "$seconds" >"$dir/wrk.txt" 2>"$dir/wrk.err" &
wrk_pid=$!
t_start="$(ms)"
sleep "$down_at"
t_kill="$(ms)"
server_kill
t_killed="$(ms)"
echo "== $store killed at +$(((t_kill - t_start)))ms (took $((t_killed - t_kill)) ms)"
# what a client sees while the store is down: a read and a write of one session (not wrk's),
# 2 s into the outage, in the background so the schedule holds however long they take
probe_cookie="$(cut -d' ' -f1 "$dir/probe.txt")"
(
  sleep 2
  for probe in GET POST; do
    curl -s -m 10 -o "$dir/probe.body" -D "$dir/probe.head" -w '%{http_code} in %{time_total}s' \
      -X "$probe" -H "Cookie: session=$probe_cookie" -H 'Content-Type: application/json' \
      $([ "$probe" = POST ] && echo --data '{"sku":"tea","qty":1}') \
      "$url$([ "$probe" = POST ] && echo /api/cart/items || echo /api/cart)" >"$dir/probe.out" || true
    echo "== down, curl $probe: $(cat "$dir/probe.out"); x-session-error: $(sed -n 's/^x-session-error: //Ip' "$dir/probe.head" | tr -d '\r'); body: $(head -c 200 "$dir/probe.body")"
  done
) >"$dir/probes.txt" 2>&1 &
sleep "$((up_at - down_at))"
t_restart="$(ms)"
server_start
for _ in $(seq 1 200); do server_ready && break; sleep 0.05; done
t_ready="$(ms)"
echo "== $store restarted at +$((t_restart - t_start))ms, answering at +$((t_ready - t_start))ms"
wait "$wrk_pid" || { echo "faults: wrk failed" >&2; cat "$dir/wrk.err" >&2; }
wrk_pid=""
t_end="$(ms)"
cat "$dir/probes.txt"
cat "$dir/wrk.txt"
[ -s "$dir/wrk.err" ] && { echo "== wrk stderr (first lines):"; head -5 "$dir/wrk.err"; }

status=0
python3 load/faults_report.py "$store" "$dir/result.txt" "$t_start" "$t_kill" "$t_restart" "$t_ready" "$t_end" || status=1
echo "== read-back of every session the client knows for sure ($(wc -l <"$dir/state.txt") sessions)"
python3 load/sessions.py verify "$url" "$dir/state.txt" "$dir/state.txt" 0 || status=1
log_lines="$(grep -cE ' (ERROR|WARN) ' "$dir/app.err" || true)"
echo "== app log: $log_lines WARN/ERROR lines (expected while the store is down); kinds:"
grep -E ' (ERROR|WARN) ' "$dir/app.err" | sed -E 's/^[^ ]+ +//; s/ [a-z_]+=.*//' | sort | uniq -c | sort -rn | head -5
kill -0 "$app_pid" 2>/dev/null && echo "== the app is still the same process (pid $app_pid): not restarted"
if [ "$status" = 0 ]; then echo "== faults $store: PASS"; else echo "== faults $store: FAILED"; fi
exit "$status"
