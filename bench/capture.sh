#!/bin/sh
# bench/capture.sh: what capturing costs the Lua echo server. The echo
# benchmark (bench/echobench: 50 connections, 64-byte messages) runs
# against scripts/tcp_echo_server.lua plain and with --pcap (every packet
# of its sockets captured and written to a pcap file), alternately in the
# same run.
#
#   bench/capture.sh                     3 alternating rounds of 5 s each
#   ROUNDS=5 DURATION=10s bench/capture.sh
#
# Needs root (a capture needs CAP_NET_RAW). Prints each round: round trips
# per second, the server's CPU time per round trip, and for the capture the
# packets written and the kernel's drop counter; then the ratio of the
# best rounds.
set -eu

cd "$(dirname "$0")/.."
ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-5s}

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT INT TERM
CGO_ENABLED=0 go build -o "$work/sockplay" ./cmd/sockplay
go build -o "$work/echobench" ./bench/echobench

best_plain=0 best_cap=0 drops=0
: > "$work/cpu.plain"
: > "$work/cpu.capture"
i=1
while [ $i -le "$ROUNDS" ]; do
	for mode in plain capture; do
		args=""
		[ $mode = capture ] && args="--pcap $work/echo.pcap"
		"$work/echobench" -sockplay "$work/sockplay" -servers sockplay -rounds 1 -d "$DURATION" \
			-sockplay-args "$args" > "$work/out" 2>&1 || { cat "$work/out"; exit 1; }
		rts=$(awk '/round trips\/s/ { print $2 }' "$work/out")
		cpu=$(awk '/round trips\/s/ { print $5 }' "$work/out")
		line="round $i  $mode   $rts round trips/s  $cpu us server CPU each"
		echo "$cpu" >> "$work/cpu.$mode"
		if [ $mode = capture ]; then
			pcap=$(grep '^pcap: ' "$work/out" | tail -1)
			d=$(echo "$pcap" | awk '{ print $(NF-4) }')
			drops=$((drops + d))
			line="$line  ($pcap)"
			[ "$rts" -gt "$best_cap" ] && best_cap=$rts
		else
			[ "$rts" -gt "$best_plain" ] && best_plain=$rts
		fi
		echo "$line"
	done
	i=$((i + 1))
done
median() { sort -n "$1" | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
mp=$(median "$work/cpu.plain") mc=$(median "$work/cpu.capture")
echo "best: plain $best_plain, capturing $best_cap round trips/s: capturing keeps $(awk "BEGIN { printf \"%.2f\", $best_cap / $best_plain }") of them"
echo "median server CPU per round trip: plain $mp us, capturing $mc us: capturing costs $(awk "BEGIN { printf \"%.0f%%\", ($mc / $mp - 1) * 100 }") more; kernel drops in all: $drops"
