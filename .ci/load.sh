#!/usr/bin/env bash
# The cart app under load (issue 7, "Load and faults"): load/run.sh for SQLite, PostgreSQL and
# Redis, $1 seconds each (default 60), then a summary table. A manual, long run (about 5
# minutes): not part of .ci/run. Needs wrk (apt-get install -y wrk), python3, psql, redis-cli,
# and the PostgreSQL and Redis servers .ci/run uses. Exits 1 if any store had an error.
set -euo pipefail
cd "$(dirname "$0")/.."

seconds="${1:-60}"
command -v wrk >/dev/null || apt-get install -y wrk
summary="$(mktemp)"
trap 'rm -f "$summary"' EXIT
failed=()
for store in sqlite postgres redis; do
  printf '\n==> load/run.sh %s %s\n' "$store" "$seconds"
  LOAD_SUMMARY="$summary" bash load/run.sh "$store" "$seconds" || failed+=("$store")
done

printf '\n%s sessions, %s connections, %s wrk threads, %s s per store, %s%% reads; %s CPU(s) shared by the app and wrk\n' \
  "${LOAD_SESSIONS:-10000}" "${LOAD_CONNECTIONS:-64}" "${LOAD_THREADS:-2}" "$seconds" "${READ_PERCENT:-70}" "$(nproc)"
printf '| %-8s | %7s | %7s | %7s | %11s | %13s | %-36s | %7s | %-6s | %7s |\n' \
  store 'req/s' 'p50 ms' 'p99 ms' 'non-2xx/3xx' 'socket errors' 'RSS kB: start / half-way / end (max)' 'app CPU' 'carts' 'log W/E'
printf '|%s|%s|%s|%s|%s|%s|%s|%s|%s|%s|\n' ---------- --------: --------: --------: -------------: \
  ---------------: -------------------------------------- --------: -------- ---------:
while IFS='|' read -r store rps p50 p99 non2xx sockerr rss0 rss_mid rss_end rss_max cpu carts logerr; do
  printf '| %-8s | %7s | %7s | %7s | %11s | %13s | %-36s | %6s%% | %-6s | %7s |\n' "$store" "$rps" "$p50" "$p99" \
    "$non2xx" "$sockerr" "$rss0 / $rss_mid / $rss_end ($rss_max)" "$cpu" "$carts" "$logerr"
done <"$summary"
if [ "${#failed[@]}" -gt 0 ]; then
  echo "load: errors with: ${failed[*]}"
  exit 1
fi
