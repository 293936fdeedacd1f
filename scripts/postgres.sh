# Start/stop a throw-away PostgreSQL 15 cluster for the tests (sourced by scripts/test.sh).
# Exports IDSP_TEST_POSTGRES_URI. Runs as the unprivileged 'postgres' OS user when root.
PG_BIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
PG_DIR=${PG_DIR:-/tmp/idsp-test-pg}
PG_PORT=${PG_PORT:-55432}

_pg() { if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }

postgres_start() {
  rm -rf "$PG_DIR"; mkdir -p "$PG_DIR"
  [ "$(id -u)" -eq 0 ] && chown postgres "$PG_DIR"
  _pg "$PG_BIN/initdb" -D "$PG_DIR/data" -U idsp --auth=trust -E UTF8 >/dev/null
  _pg "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -o "-p $PG_PORT -k $PG_DIR -c listen_addresses=127.0.0.1" \
    -l "$PG_DIR/log" -w start >/dev/null
  export IDSP_TEST_POSTGRES_URI="postgresql://idsp@127.0.0.1:$PG_PORT/postgres"
  echo "==> PostgreSQL on 127.0.0.1:$PG_PORT"
}

postgres_stop() {
  _pg "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -m fast stop >/dev/null 2>&1 || true
}
