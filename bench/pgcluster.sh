# bench/pgcluster.sh — sourced by the bench scripts that need a throwaway
# PostgreSQL cluster (bench/multi.sh, bench/feedengines.sh). The caller
# defines log and die first. Provides:
#
#   pg_find_bin          sets PG_BIN (BENCH_PG_BIN, else initdb on PATH,
#                        /usr/local/bin or /usr/lib/postgresql/*/bin)
#   pg_workdir PREFIX    makes WORK (short: a socket path has a limit),
#                        owned by postgres when run as root (AS runs a
#                        command as that user), and a trap that kills PIDS,
#                        stops the cluster and removes WORK (BENCH_KEEP=1
#                        keeps it)
#   pg_start             initdb and pg_ctl start in $WORK/pg, listening
#                        only on a Unix socket in $WORK

pg_find_bin() {
  PG_BIN=${BENCH_PG_BIN:-}
  if [ -z "$PG_BIN" ]; then
    if command -v initdb >/dev/null; then PG_BIN=$(dirname "$(command -v initdb)")
    elif [ -x /usr/local/bin/initdb ]; then PG_BIN=/usr/local/bin
    else PG_BIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | tail -1)
    fi
  fi
  [ -x "$PG_BIN/initdb" ] || die "no initdb (set BENCH_PG_BIN, or apt-get install postgresql)"
}

pg_workdir() {
  WORK=$(mktemp -d "/tmp/$1-XXXXXX")
  PIDS=()
  AS=()
  if [ "$(id -u)" = 0 ]; then
    AS=(runuser -u postgres --)
    chown postgres "$WORK"
    chmod 755 "$WORK"
  fi
  trap pg_cleanup EXIT INT TERM
}

pg_cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  [ ! -d "$WORK/pg" ] || "${AS[@]}" "$PG_BIN/pg_ctl" stop -w -m immediate -D "$WORK/pg" >/dev/null 2>&1 || true
  if [ "${BENCH_KEEP:-0}" = 1 ]; then log "kept $WORK"; else rm -rf "$WORK"; fi
}

pg_start() {
  log "starting PostgreSQL in $WORK"
  "${AS[@]}" "$PG_BIN/initdb" -D "$WORK/pg" -U postgres -A trust -E UTF8 >"$WORK/initdb.log" 2>&1 || die "initdb: $(tail -3 "$WORK/initdb.log")"
  "${AS[@]}" "$PG_BIN/pg_ctl" start -w -D "$WORK/pg" -l "$WORK/pg.log" -o "-c listen_addresses= -k $WORK" >/dev/null ||
    die "pg_ctl start: $(tail -3 "$WORK/pg.log")"
}
