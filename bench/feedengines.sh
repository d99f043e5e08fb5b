#!/usr/bin/env bash
# bench/feedengines.sh: feed serving by two real `msitfeed serve`
# processes with the same content, one on SQLite and one on PostgreSQL:
# a crawl of the fake site into SQLite, migrate-store of that file into a
# throwaway PostgreSQL cluster (so both hold the same rows), then wrk
# against each in alternating runs for the 200, the 304 (If-None-Match)
# and the gzip 200 of /feeds/press.rss. Prints each run's requests per
# second and, per case, PostgreSQL's over SQLite's per pair (median,
# min-max). Both servers run as deployed (access log on, to a file;
# --no-scheduler, so only requests touch the database).
#
# Settings (environment): BENCH_ROUNDS (pairs per case, default 3),
# BENCH_SECONDS (seconds per wrk run, default 5), BENCH_PG_BIN (the
# directory of initdb and pg_ctl; found otherwise).
set -euo pipefail
cd "$(dirname "$0")/.."
log() { printf '%s feedengines: %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }
die() { log "$*"; exit 1; }

ROUNDS=${BENCH_ROUNDS:-3}
SECS=${BENCH_SECONDS:-5}
# shellcheck source=bench/pgcluster.sh
. bench/pgcluster.sh
pg_find_bin
command -v wrk >/dev/null || die "no wrk (apt-get install wrk)"

pg_workdir msitfeed-fe

log "building"
BIN=$WORK/bin
go build -o "$BIN/" ./cmd/msitfeed ./bench/cmd/fakesite ./bench/cmd/freeport
read -r PORT_SQ PORT_PG <<<"$("$BIN/freeport" 2 | tr '\n' ' ')"

pg_start
psql -q -h "$WORK" -U postgres -d postgres -c "CREATE DATABASE feeds" >/dev/null
PGURL="postgres://postgres@/feeds?host=$WORK&sslmode=disable"

# One base URL for both, so both render the same bytes.
mfenv=(env MSITFEED_BASE_URL="http://127.0.0.1:8080" MSITFEED_SOURCE_RATE=1000 MSITFEED_SOURCE_BACKOFF=10ms)

log "seeding: a crawl of the fake site into SQLite, copied into PostgreSQL"
"$BIN/fakesite" -addr-file "$WORK/site.addr" -per-board 60 -recent 12 >"$WORK/site.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 100); do [ -s "$WORK/site.addr" ] && break; sleep 0.1; done
read -r SITE_URL _ <"$WORK/site.addr"
SQDB=$WORK/feeds.db
"${mfenv[@]}" MSITFEED_DATABASE="$SQDB" MSITFEED_SOURCE_URL="$SITE_URL" "$BIN/msitfeed" crawl --pages 6 >"$WORK/crawl.log" 2>&1 ||
  die "crawl: $(tail -3 "$WORK/crawl.log")"
"$BIN/msitfeed" migrate-store --from "$SQDB" --to "$PGURL" >"$WORK/migrate.log" 2>&1 || die "migrate-store: $(tail -3 "$WORK/migrate.log")"

serve() { # serve DB PORT LOG
  "${mfenv[@]}" MSITFEED_DATABASE="$1" MSITFEED_LISTEN="127.0.0.1:$2" "$BIN/msitfeed" serve --no-scheduler >"$3" 2>&1 &
  PIDS+=($!)
  for _ in $(seq 100); do curl -sf -o /dev/null "http://127.0.0.1:$2/feeds/press.rss" && return; sleep 0.1; done
  die "serve on $2: $(tail -3 "$3")"
}
serve "$SQDB" "$PORT_SQ" "$WORK/serve-sqlite.log"
serve "$PGURL" "$PORT_PG" "$WORK/serve-pg.log"

path=/feeds/press.rss
curl -sf -D "$WORK/h.sq" -o "$WORK/body.sq" "http://127.0.0.1:$PORT_SQ$path"
curl -sf -D "$WORK/h.pg" -o "$WORK/body.pg" "http://127.0.0.1:$PORT_PG$path"
cmp -s "$WORK/body.sq" "$WORK/body.pg" || die "the two servers send different documents"
etag() { awk 'tolower($1) == "etag:" { sub(/\r$/, "", $2); print $2 }' "$1"; }
ETAG=$(etag "$WORK/h.sq")
[ "$ETAG" = "$(etag "$WORK/h.pg")" ] || die "the two servers send different ETags"
log "$(grep -c '<item>' "$WORK/body.sq") items, $(stat -c %s "$WORK/body.sq") bytes, ETag $ETAG; load $(cut -d' ' -f1-3 /proc/loadavg)"

rps() { # rps PORT HEADER...: requests per second of one wrk run
  local port=$1
  shift
  local h=()
  for x in "$@"; do h+=(-H "$x"); done
  wrk -t2 -c32 -d"${SECS}s" "${h[@]}" "http://127.0.0.1:$port$path" | awk '/^Requests\/sec:/ { print $2 }'
}
for c in 200 304 gzip; do
  case $c in
    200) hdr=() ;;
    304) hdr=("If-None-Match: $ETAG") ;;
    gzip) hdr=("Accept-Encoding: gzip") ;;
  esac
  ratios=""
  for r in $(seq "$ROUNDS"); do
    if [ $((r % 2)) = 1 ]; then
      sq=$(rps "$PORT_SQ" "${hdr[@]}"); pg=$(rps "$PORT_PG" "${hdr[@]}")
    else
      pg=$(rps "$PORT_PG" "${hdr[@]}"); sq=$(rps "$PORT_SQ" "${hdr[@]}")
    fi
    ratio=$(awk -v a="$pg" -v b="$sq" 'BEGIN { printf "%.3f", a / b }')
    ratios+="$ratio "
    printf '%s round %s: sqlite %s req/s, postgres %s req/s, pg/sqlite %s (load %s)\n' "$c" "$r" "$sq" "$pg" "$ratio" "$(cut -d' ' -f1 /proc/loadavg)"
  done
  echo "$ratios" | tr ' ' '\n' | grep . | sort -n |
    awk -v c="$c" '{ v[NR] = $1 } END { m = NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2; printf "%s: pg/sqlite median %.3f, min %.3f, max %.3f over %d pairs\n", c, m, v[1], v[NR], NR }'
done
