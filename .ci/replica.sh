#!/usr/bin/env bash
# A streaming replica of the local PostgreSQL (127.0.0.1:5432) on 127.0.0.1:5433, for the
# read-replica tests of PostgresStore (SESSIONS_TEST_POSTGRES_REPLICA_URL).
#
# Idempotent: a replica already answering on the port is kept. Otherwise the primary gets a
# `host replication` line for 127.0.0.1 in its pg_hba.conf (if it lacks one) and reloads, and a
# new cluster is made with pg_basebackup (-R: it starts as a standby streaming from the primary)
# in a directory of its own, with a config of its own (Debian keeps the primary's config outside
# its data directory, so a copy of the data directory has none).
set -euo pipefail

PORT="${SESSIONS_REPLICA_PORT:-5433}"
DIR="${SESSIONS_REPLICA_DIR:-/var/lib/postgresql/sessions-replica}"
PRIMARY=(-h 127.0.0.1 -p 5432 -U postgres)

as_postgres() { runuser -u postgres -- "$@"; }

if pg_isready -h 127.0.0.1 -p "$PORT" -q 2>/dev/null; then
  if [ "$(psql -h 127.0.0.1 -p "$PORT" -U postgres -d test -Atc 'select pg_is_in_recovery()')" = t ]; then
    echo "replica: already streaming on 127.0.0.1:$PORT"
    exit 0
  fi
  echo "replica: 127.0.0.1:$PORT answers but is not a standby" >&2
  exit 1
fi

MAJOR="$(( $(psql "${PRIMARY[@]}" -d test -Atc 'show server_version_num') / 10000 ))"
BIN="/usr/lib/postgresql/$MAJOR/bin"
HBA="$(psql "${PRIMARY[@]}" -d test -Atc 'show hba_file')"
if ! grep -Eq '^[[:space:]]*host[[:space:]]+replication[[:space:]]+all[[:space:]]+127\.0\.0\.1/32' "$HBA"; then
  echo "host replication all 127.0.0.1/32 trust" >>"$HBA"
  psql "${PRIMARY[@]}" -d test -Atc 'select pg_reload_conf()' >/dev/null
  echo "replica: added a replication line to $HBA"
fi

# A stale directory (a replica that was stopped, or a machine restarted): start it again if it
# is whole, else make a new one.
if [ -f "$DIR/standby.signal" ] && [ -f "$DIR/postgresql.conf" ]; then
  if as_postgres "$BIN/pg_ctl" -D "$DIR" -l "$DIR/server.log" -w -t 60 start >/dev/null; then
    echo "replica: restarted on 127.0.0.1:$PORT"
    exit 0
  fi
fi

rm -rf "$DIR"
mkdir -p "$DIR"
chown postgres:postgres "$DIR"
chmod 700 "$DIR"
as_postgres pg_basebackup "${PRIMARY[@]}" -D "$DIR" -X stream -R -c fast
as_postgres tee "$DIR/postgresql.conf" >/dev/null <<EOF
port = $PORT
listen_addresses = '127.0.0.1'
unix_socket_directories = '/tmp'
hot_standby = on
hot_standby_feedback = on
max_connections = 200
shared_buffers = 64MB
# A test pauses replay (pg_wal_replay_pause) while reads run: queries never wait on replay.
max_standby_streaming_delay = -1
wal_receiver_status_interval = 1s
EOF
as_postgres tee "$DIR/pg_hba.conf" >/dev/null <<EOF
local all all trust
host all all 127.0.0.1/32 trust
EOF
as_postgres "$BIN/pg_ctl" -D "$DIR" -l "$DIR/server.log" -w -t 60 start >/dev/null
for _ in $(seq 1 30); do
  if [ "$(psql -h 127.0.0.1 -p "$PORT" -U postgres -d test -Atc 'select pg_is_in_recovery()' 2>/dev/null)" = t ]; then
    echo "replica: streaming on 127.0.0.1:$PORT"
    exit 0
  fi
  sleep 1
done
echo "replica: not reachable on 127.0.0.1:$PORT" >&2
tail -20 "$DIR/server.log" >&2 || true
exit 1
