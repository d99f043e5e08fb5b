#!/usr/bin/env bash
# bench/multi.sh — digest throughput per CPU-second of msitfeed: three
# `msitfeed digest send` sharing one PostgreSQL against one on SQLite, into
# the same Postfix smtp-sink on loopback. Prints the rounds and the ratio.
#
#   BENCH_SUBSCRIBERS=5000 BENCH_MULTI_ROUNDS=3 bench/multi.sh
#
# Each round sends one digest (one ~23 KB edition, every subscriber on all
# boards) once on a fresh copy of the SQLite store, and once with
# BENCH_INSTANCES processes (3) started together on a fresh PostgreSQL
# database that migrate-store filled from that copy; the two alternate in
# order. The figure is messages per CPU-second (user + system, from GNU
# time) summed over the msitfeed processes of the send. The PostgreSQL
# server's CPU is not in it (SQLite's is, inside msitfeed); a second figure
# adds it (the postmaster's children's CPU during the send, from /proc).
# It starts its own throwaway PostgreSQL cluster (initdb and pg_ctl, as
# user postgres when run as root) on a Unix socket, and removes it.
#
# Environment: BENCH_SUBSCRIBERS (5000), BENCH_MULTI_ROUNDS (3),
# BENCH_INSTANCES (3), BENCH_SMTP_CONCURRENCY (4 per process),
# BENCH_PG_BIN (the directory of initdb and pg_ctl; found otherwise),
# BENCH_KEEP=1 (keep the work directory: stores, outputs, time files).
set -euo pipefail

N=${BENCH_SUBSCRIBERS:-5000}
ROUNDS=${BENCH_MULTI_ROUNDS:-3}
INSTANCES=${BENCH_INSTANCES:-3}
CONC=${BENCH_SMTP_CONCURRENCY:-4}
SMTP_SINK=/usr/sbin/smtp-sink

cd "$(dirname "$0")/.."
log() { printf '%s multi: %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }
die() { log "$*"; exit 1; }

# shellcheck source=bench/pgcluster.sh
. bench/pgcluster.sh
pg_find_bin
[ -x "$SMTP_SINK" ] || die "no $SMTP_SINK (apt-get install postfix)"
[ -x /usr/bin/time ] || die "no GNU time (apt-get install time)"

pg_workdir msitfeed-multi

log "building msitfeed and the bench helpers"
BIN=$WORK/bin
go build -o "$BIN/" ./cmd/msitfeed ./bench/cmd/fakesite ./bench/cmd/freeport
read -r PORT_SMTP PORT_WEB <<<"$("$BIN/freeport" 2 | tr '\n' ' ')"

pg_start
pgurl() { echo "postgres://postgres@/$1?host=$WORK&sslmode=disable"; }
psqlc() { psql -q -h "$WORK" -U postgres -d postgres -c "$1" >/dev/null; }

mfenv=(env MSITFEED_BASE_URL="http://127.0.0.1:$PORT_WEB" MSITFEED_SMTP_HOST=127.0.0.1 MSITFEED_SMTP_PORT="$PORT_SMTP"
  MSITFEED_SMTP_TLS=none MSITFEED_MAIL_FROM="msitfeed bench <bench@example.org>" MSITFEED_SMTP_CONCURRENCY="$CONC"
  MSITFEED_SOURCE_RATE=1000 MSITFEED_SOURCE_BACKOFF=10ms)

log "seeding: a crawl of the fake site and $N subscribers"
"$BIN/fakesite" -addr-file "$WORK/site.addr" -per-board 30 -recent 12 >"$WORK/site.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 100); do [ -s "$WORK/site.addr" ] && break; sleep 0.1; done
read -r SITE_URL _ <"$WORK/site.addr"
TEMPLATE=$WORK/template.db
"${mfenv[@]}" MSITFEED_DATABASE="$TEMPLATE" MSITFEED_SOURCE_URL="$SITE_URL" "$BIN/msitfeed" crawl --pages 3 >"$WORK/crawl.log" 2>&1 ||
  die "crawl: $(tail -3 "$WORK/crawl.log")"
joined=$(date -u -d '30 days ago' +%Y-%m-%d)
awk -v n="$N" -v j="$joined" 'BEGIN {
  print "email,name,status,created,confirmed"
  for (i = 0; i < n; i++) printf "reader%06d@example.org,Reader %d,active,%s,%s\n", i, i, j, j
}' >"$WORK/subscribers.csv"
"${mfenv[@]}" MSITFEED_DATABASE="$TEMPLATE" "$BIN/msitfeed" subscribers import "$WORK/subscribers.csv" >"$WORK/import.log" 2>&1 ||
  die "import: $(tail -3 "$WORK/import.log")"

"$SMTP_SINK" -u postfix 127.0.0.1:"$PORT_SMTP" 1000 >"$WORK/sink.log" 2>&1 &
PIDS+=($!)
sleep 0.5

# pg_cpu prints the CPU seconds the PostgreSQL server has used so far: the
# postmaster's own and its reaped children's (backends that exited), and
# its live children's.
TICK=$(getconf CLK_TCK)
pg_cpu() {
  local pm
  pm=$(head -1 "$WORK/pg/postmaster.pid")
  for f in /proc/[0-9]*/stat; do cat "$f" 2>/dev/null || true; done |
    awk -v pm="$pm" -v tick="$TICK" '{
      # pid (comm) state ppid ...: after the comm, field 3 of stat is f[1]
      pid = $1; match($0, /.*\) /); split(substr($0, RLENGTH + 1), f, " ")
      if (pid == pm) t += f[12] + f[13] + f[14] + f[15]
      else if (f[2] == pm) t += f[12] + f[13]
    } END { printf "%.2f", t / tick }'
}

# cpu FILE prints user+system seconds from a GNU time -f '%U %S %e' file.
cpu() { awk 'END { printf "%.2f", $1 + $2 }' "$1"; }
wall() { awk 'END { print $3 }' "$1"; }
# sent FILE prints the messages a digest send reported sending.
sent() { awk '/ sent, / { for (i = 1; i < NF; i++) if ($(i + 1) == "sent,") s += $i } END { print s + 0 }' "$1"; }

sqlite_round() {
  local r=$1 db=$WORK/r$1.db
  cp "$TEMPLATE" "$db"
  [ ! -f "$TEMPLATE-wal" ] || cp "$TEMPLATE-wal" "$db-wal"
  "${mfenv[@]}" MSITFEED_DATABASE="$db" /usr/bin/time -f '%U %S %e' -o "$WORK/time.s$r" "$BIN/msitfeed" digest send >"$WORK/send.s$r" 2>&1 ||
    die "sqlite send: $(tail -3 "$WORK/send.s$r")"
  local n c
  n=$(sent "$WORK/send.s$r")
  c=$(cpu "$WORK/time.s$r")
  [ "$n" = "$N" ] || die "sqlite round $r sent $n of $N: $(cat "$WORK/send.s$r")"
  SQ_RATE+="$(awk -v n="$n" -v c="$c" 'BEGIN { printf "%.1f", n / c }') "
  printf 'round %s sqlite: %s sent, %s CPU-s, %ss wall\n' "$r" "$n" "$c" "$(wall "$WORK/time.s$r")"
}

pg_round() {
  local r=$1 i n=0 c=0 split="" wallmax=0
  psqlc "CREATE DATABASE r$r"
  "$BIN/msitfeed" migrate-store --from "$TEMPLATE" --to "$(pgurl "r$r")" >"$WORK/copy.$r" 2>&1 || die "migrate-store: $(tail -3 "$WORK/copy.$r")"
  local pids=() pg0
  pg0=$(pg_cpu)
  for i in $(seq "$INSTANCES"); do
    "${mfenv[@]}" MSITFEED_DATABASE="$(pgurl "r$r")" /usr/bin/time -f '%U %S %e' -o "$WORK/time.p$r.$i" \
      "$BIN/msitfeed" digest send >"$WORK/send.p$r.$i" 2>&1 &
    pids+=($!)
  done
  for i in $(seq "$INSTANCES"); do
    wait "${pids[$((i - 1))]}" || die "postgres send $i: $(tail -3 "$WORK/send.p$r.$i")"
    local k
    k=$(sent "$WORK/send.p$r.$i")
    n=$((n + k))
    split+="$k/"
    c=$(awk -v a="$c" -v b="$(cpu "$WORK/time.p$r.$i")" 'BEGIN { printf "%.2f", a + b }')
    wallmax=$(awk -v a="$wallmax" -v b="$(wall "$WORK/time.p$r.$i")" 'BEGIN { print (b > a ? b : a) }')
  done
  [ "$n" = "$N" ] || die "postgres round $r sent $n of $N"
  local server
  server=$(awk -v a="$pg0" -v b="$(pg_cpu)" 'BEGIN { printf "%.2f", b - a }')
  PG_RATE+="$(awk -v n="$n" -v c="$c" 'BEGIN { printf "%.1f", n / c }') "
  PG_ALL+="$(awk -v n="$n" -v c="$c" -v s="$server" 'BEGIN { printf "%.1f", n / (c + s) }') "
  printf 'round %s postgres x%s: %s sent (%s), %s CPU-s, %ss wall; PostgreSQL server %s CPU-s\n' "$r" "$INSTANCES" "$n" "${split%/}" "$c" "$wallmax" "$server"
  psqlc "DROP DATABASE r$r"
}

median() { tr ' ' '\n' | grep . | sort -g | awk '{ a[NR] = $1 } END { m = (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2; printf "%s %s %s", m, a[1], a[NR] }'; }

SQ_RATE="" PG_RATE="" PG_ALL=""
log "load average $(cut -d' ' -f1-3 /proc/loadavg); $ROUNDS rounds of $N messages, $CONC connections per process"
for r in $(seq "$ROUNDS"); do
  if [ $((r % 2)) = 1 ]; then sqlite_round "$r"; pg_round "$r"; else pg_round "$r"; sqlite_round "$r"; fi
done
read -r sm slo shi <<<"$(median <<<"$SQ_RATE")"
read -r pm plo phi <<<"$(median <<<"$PG_RATE")"
echo "sqlite, 1 process: $sm messages per CPU-second (median; $slo-$shi)"
echo "postgres, $INSTANCES processes: $pm messages per CPU-second (median; $plo-$phi)"
read -r am alo ahi <<<"$(median <<<"$PG_ALL")"
echo "ratio postgres/sqlite: $(awk -v p="$pm" -v s="$sm" 'BEGIN { printf "%.2f", p / s }')"
echo "postgres, $INSTANCES processes, counting the server's CPU too: $am messages per CPU-second (median; $alo-$ahi), ratio $(awk -v p="$am" -v s="$sm" 'BEGIN { printf "%.2f", p / s }')"
log "load average $(cut -d' ' -f1-3 /proc/loadavg)"
