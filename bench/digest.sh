#!/bin/sh
# bench/digest.sh — send one digest to N subscribers through Postfix's
# smtp-sink on loopback, then push N messages of the same size through the
# same sink with smtp-source, and print both rates and their ratio.
#
#   N=10000 CONCURRENCY=4 bench/digest.sh
#
# Needs Go and Postfix's smtp-sink/smtp-source (Debian: apt-get install
# postfix). The digest side is BenchmarkDigestSend in mailer/bench_test.go
# pointed at the sink via MSITFEED_BENCH_SMTP; it includes building the
# digest and writing every delivery to the ledger, but not starting the
# process, and its subscribers follow three board sets (three editions of
# different sizes). bench/run --only digest measures the whole command on
# one 23 KB edition, the case the goal is set for. CONCURRENCY defaults to
# 4, msitfeed's default and as many connections as smtp-source -s 4 uses.
set -eu

N=${N:-10000}
CONCURRENCY=${CONCURRENCY:-4}
PORT=${PORT:-2526}
SESSIONS=${SESSIONS:-4}
SINK=${SINK:-/usr/sbin/smtp-sink}
SOURCE=${SOURCE:-/usr/sbin/smtp-source}

cd "$(dirname "$0")/.."
for tool in "$SINK" "$SOURCE"; do
	if [ ! -x "$tool" ]; then
		echo "bench/digest.sh: $tool not found (apt-get install postfix)" >&2
		exit 2
	fi
done

user_opt=""
if [ "$(id -u)" = 0 ]; then
	user_opt="-u nobody"
fi
# shellcheck disable=SC2086 # user_opt is two words or none
"$SINK" $user_opt "127.0.0.1:$PORT" 256 &
sink_pid=$!
trap 'kill "$sink_pid" 2>/dev/null || true' EXIT INT TERM
sleep 0.5

now() { date +%s.%N; }

# The size of one digest, measured with the in-process server.
size=$(go test ./mailer -run '^$' -bench '^BenchmarkDigestSend$' -benchtime 1x -count 1 |
	awk '/bytes\/msg/ { for (i = 1; i < NF; i++) if ($(i+1) == "bytes/msg") print int($i) }')
if [ -z "$size" ]; then
	echo "bench/digest.sh: could not measure the digest size" >&2
	exit 1
fi

go test -c -o /tmp/msitfeed-mailer.test ./mailer >/dev/null
digest=$(MSITFEED_BENCH_SMTP="127.0.0.1:$PORT" MSITFEED_BENCH_SUBSCRIBERS="$N" MSITFEED_BENCH_CONCURRENCY="$CONCURRENCY" \
	/tmp/msitfeed-mailer.test -test.run '^$' -test.bench '^BenchmarkDigestSend$' -test.benchtime 1x -test.count 1 |
	awk '/msgs\/s/ { for (i = 1; i < NF; i++) if ($(i+1) == "msgs/s") print $i }')

start=$(now)
"$SOURCE" -d -s "$SESSIONS" -m "$N" -l "$size" -f digest@msitfeed.example -t reader@example.org "127.0.0.1:$PORT"
end=$(now)
source_rate=$(awk -v n="$N" -v s="$start" -v e="$end" 'BEGIN { printf "%.0f", n / (e - s) }')

echo "messages:         $N of $size bytes"
echo "msitfeed digest:  $digest msgs/s (concurrency $CONCURRENCY)"
echo "smtp-source:      $source_rate msgs/s (-s $SESSIONS)"
awk -v d="$digest" -v s="$source_rate" 'BEGIN { printf "ratio:            %.2f\n", d / s }'
