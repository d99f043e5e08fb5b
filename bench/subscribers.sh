#!/usr/bin/env bash
# bench/subscribers.sh — a large subscriber list: wall time and peak RSS of
# `subscribers import`, `digest send --dry-run` (digest planning over every
# active subscriber), `subscribers export`, the import of the same file
# again (every row already known: a note per row) and, with SEND=1, a real
# `digest send` (digest creation plus sending) into Postfix's smtp-sink.
#
#   bench/subscribers.sh                          1,000,000 subscribers, 3 rounds
#   N=200000 ROUNDS=5 bench/subscribers.sh
#   BASE=/tmp/msitfeed-base bench/subscribers.sh  the same steps with a
#                                                 baseline binary, alternating
#   SEND=1 bench/subscribers.sh                   also a real send (slow)
#
# The posts come from a crawl of bench/cmd/fakesite (30 a board, 12 of them
# recent); the list from bench/cmd/gensubs (realistic addresses, 60% on all
# boards, one in twenty with a keyword filter, 2% pending, 1% unsubscribed,
# joined 30 days ago). Each round imports into a fresh copy of the crawled
# database; the other steps run on the database the round imported.
# Writes a Markdown section on stdout, progress on stderr. Needs GNU time
# (and Postfix's smtp-sink for SEND=1); every process it starts is killed
# on exit.
set -euo pipefail

cd "$(dirname "$0")/.."
N=${N:-1000000}
ROUNDS=${ROUNDS:-3}
BASE=${BASE:-}
SEND=${SEND:-0}

log() { printf '%s subscribers bench: %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "FAILED: $*"; exit 1; }
[ -x /usr/bin/time ] || die "needs GNU time (apt-get install time)"
[ "$SEND" = 0 ] || [ -x /usr/sbin/smtp-sink ] || die "SEND=1 needs Postfix's smtp-sink (apt-get install postfix)"
[ -z "$BASE" ] || [ -x "$BASE" ] || die "BASE=$BASE is not an executable"

WORK=$(mktemp -d "${TMPDIR:-/tmp}/msitfeed-subs.XXXXXX")
PIDS=()
cleanup() {
  local p
  for p in "${PIDS[@]+"${PIDS[@]}"}"; do kill "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]+"${PIDS[@]}"}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

log "building"
go build -o "$WORK/bin/" ./cmd/msitfeed ./bench/cmd/gensubs ./bench/cmd/fakesite ./bench/cmd/freeport
CUR=$WORK/bin/msitfeed
read -r PORT_SMTP <<<"$("$WORK/bin/freeport" 1)"

for v in $(compgen -e | grep '^MSITFEED_' || true); do unset "$v"; done
export MSITFEED_BASE_URL=http://127.0.0.1:9 MSITFEED_SOURCE_RATE=1000 MSITFEED_SOURCE_BACKOFF=10ms
export MSITFEED_SMTP_HOST=127.0.0.1 MSITFEED_SMTP_PORT=$PORT_SMTP MSITFEED_SMTP_TLS=none MSITFEED_MAIL_FROM='bench <bench@example.org>'

log "seeding posts"
"$WORK/bin/fakesite" -addr-file "$WORK/site.addr" -per-board 30 -recent 12 >"$WORK/site.log" 2>&1 &
site_pid=$!
PIDS+=("$site_pid")
for _ in $(seq 100); do [ -s "$WORK/site.addr" ] && break; sleep 0.1; done
read -r site_url _ <"$WORK/site.addr" || die "fake site did not start: $(cat "$WORK/site.log")"
MSITFEED_DATABASE=$WORK/posts.db MSITFEED_SOURCE_URL=$site_url "$CUR" crawl --pages 3 >"$WORK/crawl.out" 2>&1 ||
  die "crawl: $(tail -3 "$WORK/crawl.out")"
kill "$site_pid"

log "writing $N subscribers"
"$WORK/bin/gensubs" -n "$N" -joined "$(date -u -d '30 days ago' +%Y-%m-%d)" >"$WORK/subs.csv"
CSV_MB=$(awk -v b="$(stat -c %s "$WORK/subs.csv")" 'BEGIN { printf "%.0f", b / 1048576 }')

if [ "$SEND" = 1 ]; then
  user_opt=()
  [ "$(id -u)" != 0 ] || user_opt=(-u nobody)
  /usr/sbin/smtp-sink "${user_opt[@]}" "127.0.0.1:$PORT_SMTP" 1000 >"$WORK/sink.log" 2>&1 &
  PIDS+=("$!")
  sleep 0.5
fi

# run NAME BIN STEP ARGS... runs one step under GNU time on NAME's database
# and records "seconds MiB" in $WORK/res.NAME.STEP.
run() {
  local name=$1 bin=$2 step=$3; shift 3
  MSITFEED_DATABASE=$WORK/$name.db /usr/bin/time -v -o "$WORK/time" "$bin" "$@" >"$WORK/out" 2>"$WORK/err" ||
    die "$name $step: $(tail -3 "$WORK/err")"
  local secs rss
  secs=$(awk -F': ' '/Elapsed \(wall clock\)/ { n = split($2, p, ":"); s = 0; for (i = 1; i <= n; i++) s = s * 60 + p[i]; print s }' "$WORK/time")
  rss=$(awk -F': ' '/Maximum resident set size/ { printf "%.1f", $2 / 1024 }' "$WORK/time")
  echo "$secs $rss" >>"$WORK/res.$name.$step"
  local said
  said=$(tail -1 "$WORK/out")
  [ "$step" != export ] || said="$(($(wc -l <"$WORK/out") - 1)) rows"
  printf 'round %s %s %s: %ss, peak RSS %s MiB: %s\n' "$r" "$name" "$step" "$secs" "$rss" "$said" >>"$WORK/runs.txt"
  log "$name $step: ${secs}s, ${rss} MiB"
}

NAMES=(current)
[ -z "$BASE" ] || NAMES=(baseline current)
declare -A BIN=([current]=$CUR [baseline]=$BASE)
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
for r in $(seq "$ROUNDS"); do
  order=("${NAMES[@]}")
  if [ $((r % 2)) = 0 ] && [ -n "$BASE" ]; then order=(current baseline); fi
  for name in "${order[@]}"; do
    rm -f "$WORK/$name.db" "$WORK/$name.db-wal" "$WORK/$name.db-shm"
    cp "$WORK/posts.db" "$WORK/$name.db"
    run "$name" "${BIN[$name]}" import subscribers import "$WORK/subs.csv"
    run "$name" "${BIN[$name]}" dry-run digest send --dry-run
    run "$name" "${BIN[$name]}" export subscribers export
    run "$name" "${BIN[$name]}" reimport subscribers import "$WORK/subs.csv"
    if [ "$SEND" = 1 ]; then run "$name" "${BIN[$name]}" send digest send; fi
  done
done

# stats COLUMN FILE prints "median min max" of one column.
stats() {
  awk -v c="$1" '{ print $c }' "$2" | sort -g | awk '{ a[NR] = $1 } END {
    m = (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2
    printf "%s %s %s\n", m, a[1], a[NR] }'
}

steps=(import dry-run export reimport)
[ "$SEND" = 0 ] || steps+=(send)
echo "## Subscribers at scale: $N subscribers"
echo
echo "\`$(for v in N ROUNDS BASE SEND; do [ -z "${!v}" ] || printf '%s=%s ' "$v" "${!v}"; done)bench/subscribers.sh\` at commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown)$(git status --porcelain --untracked-files=no 2>/dev/null | grep -q . && echo ' (with uncommitted changes)' || true),"
echo "$(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) CPUs, $(awk '/^MemTotal:/ { printf "%.1f GiB", $2/1048576 }' /proc/meminfo)."
echo "The CSV is ${CSV_MB} MiB; $(grep -m1 'dry-run' "$WORK/runs.txt" | sed 's/.*: would/would/')."
echo "Wall time and peak RSS (GNU time's maximum resident set size) of each command, median of $ROUNDS rounds (min–max)$([ -z "$BASE" ] || echo ', baseline and current alternating')."
echo
echo "| step | build | seconds | µs per subscriber | peak RSS MiB | KiB per subscriber |"
echo "| --- | --- | --- | --- | --- | --- |"
for step in "${steps[@]}"; do
  for name in "${NAMES[@]}"; do
    read -r s slo shi < <(stats 1 "$WORK/res.$name.$step")
    read -r m mlo mhi < <(stats 2 "$WORK/res.$name.$step")
    awk -v step="$step" -v name="$name" -v n="$N" -v s="$s" -v slo="$slo" -v shi="$shi" -v m="$m" -v mlo="$mlo" -v mhi="$mhi" 'BEGIN {
      printf "| %s | %s | %.1f (%.1f–%.1f) | %.1f | %.0f (%.0f–%.0f) | %.3f |\n", step, name, s, slo, shi, s * 1e6 / n, m, mlo, mhi, m * 1024 / n }'
  done
done
echo
echo "Load average (1, 5, 15 min) before the rounds: $LOAD_BEFORE; after: $(cut -d' ' -f1-3 /proc/loadavg)."
echo
echo "<details><summary>every run</summary>"
echo
echo '```'
cat "$WORK/runs.txt"
echo '```'
echo "</details>"
