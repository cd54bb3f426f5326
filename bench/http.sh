#!/bin/sh
# bench/http.sh: requests per second of scripts/http_server.lua serving a
# small static file, against Go's net/http file server (bench/gofileserver)
# serving the same file, in the same run.
#
#   bench/http.sh                       3 alternating rounds of 5 s each
#   ROUNDS=5 DURATION=10s bench/http.sh
#
# Each server runs pinned to CPU 0 with GOMAXPROCS=1, wrk (-t1 -c50) on
# CPU 1. http_server.lua logs every request, as it always does, to a file.
# Prints each round: requests per second, and requests per second of the
# server's own CPU time (user + system, from /proc), which moves less when
# other programs share the machine. Then the ratio of the best rounds.
set -eu

cd "$(dirname "$0")/.."
ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-5s}
CONNS=${CONNS:-50}
FILE=${FILE:-hello.html}

command -v wrk >/dev/null || { echo "bench/http.sh: wrk is not installed" >&2; exit 2; }
pin_server="taskset -c 0"
pin_client="taskset -c 1"
if ! command -v taskset >/dev/null || [ "$(nproc)" -lt 2 ]; then
	pin_server="" pin_client=""
	echo "(not pinning: taskset or a second CPU is missing)"
fi

work=$(mktemp -d)
server_pid=""
cleanup() {
	if [ -n "$server_pid" ]; then kill "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true; fi
	rm -rf "$work"
}
trap cleanup EXIT INT TERM

CGO_ENABLED=0 go build -o "$work/sockplay" ./cmd/sockplay
go build -o "$work/gofileserver" ./bench/gofileserver
mkdir "$work/www"
# A small page, the kind of file a static server serves most (about 200 bytes).
cat > "$work/www/hello.html" <<'EOF'
<!doctype html>
<html><head><meta charset="utf-8"><title>hello</title></head>
<body><h1>Hello</h1><p>A small static file for the benchmark: sockplay versus net/http.</p></body>
</html>
EOF
cp "$work/www/hello.html" "$work/www/$FILE" 2>/dev/null || true

# start NAME CMD...: run a server pinned, wait for "listening on", set $addr.
start() {
	name=$1
	shift
	: > "$work/$name.out"
	GOMAXPROCS=1 $pin_server "$@" > "$work/$name.out" 2> "$work/$name.err" &
	server_pid=$!
	i=0
	while ! grep -q '^listening on ' "$work/$name.out"; do
		i=$((i + 1))
		if [ $i -gt 100 ] || ! kill -0 "$server_pid" 2>/dev/null; then
			echo "bench/http.sh: $name did not start:" >&2
			cat "$work/$name.err" >&2
			exit 1
		fi
		sleep 0.1
	done
	addr=$(sed -n '1s/^listening on //p' "$work/$name.out")
}

stop() {
	kill "$server_pid" 2>/dev/null || true
	wait "$server_pid" 2>/dev/null || true
	server_pid=""
}

# cpu_ticks PID: the process's user + system time, in clock ticks.
cpu_ticks() {
	awk '{ print $14 + $15 }' "/proc/$1/stat"
}

# measure NAME: wrk against $addr; prints requests per second and requests
# per CPU second of the server.
measure() {
	url="http://$addr/$FILE"
	curl -sS --max-time 5 -o /dev/null -w '%{http_code}' "$url" | grep -q 200 || {
		echo "bench/http.sh: $1 does not serve $url" >&2
		exit 1
	}
	t0=$(cpu_ticks "$server_pid")
	$pin_client wrk -t1 -c"$CONNS" -d"$DURATION" --timeout 5s "$url" > "$work/wrk.out"
	t1=$(cpu_ticks "$server_pid")
	if grep -q 'Non-2xx\|Socket errors' "$work/wrk.out"; then
		echo "bench/http.sh: $1 had errors:" >&2
		cat "$work/wrk.out" >&2
	fi
	awk -v t0="$t0" -v t1="$t1" -v hz="$(getconf CLK_TCK)" '
		/requests in/ { n = $1 }
		/^Requests\/sec:/ { rps = $2 }
		END { cpu = (t1 - t0) / hz; printf "%d %d\n", rps, (cpu > 0 ? n / cpu : 0) }' "$work/wrk.out"
}

best_go=0 best_lua=0 best_go_cpu=0 best_lua_cpu=0
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", (b > 0 ? a / b : 0) }'; }
round=1
while [ $round -le "$ROUNDS" ]; do
	start gofileserver "$work/gofileserver" -root "$work/www"
	set -- $(measure gofileserver)
	go_rps=$1 go_cpu=$2
	stop
	start http_server.lua "$work/sockplay" scripts/http_server.lua --root "$work/www" --port 0
	set -- $(measure http_server.lua)
	lua_rps=$1 lua_cpu=$2
	stop
	printf 'round %d: net/http %6d req/s (%6d per CPU s)   http_server.lua %6d req/s (%6d per CPU s)   ratio %s (%s per CPU s)\n' \
		"$round" "$go_rps" "$go_cpu" "$lua_rps" "$lua_cpu" "$(ratio "$lua_rps" "$go_rps")" "$(ratio "$lua_cpu" "$go_cpu")"
	[ "$go_rps" -gt "$best_go" ] && best_go=$go_rps
	[ "$lua_rps" -gt "$best_lua" ] && best_lua=$lua_rps
	[ "$go_cpu" -gt "$best_go_cpu" ] && best_go_cpu=$go_cpu
	[ "$lua_cpu" -gt "$best_lua_cpu" ] && best_lua_cpu=$lua_cpu
	round=$((round + 1))
done
printf 'best:    net/http %6d req/s (%6d per CPU s)   http_server.lua %6d req/s (%6d per CPU s)   ratio %s (%s per CPU s)\n' \
	"$best_go" "$best_go_cpu" "$best_lua" "$best_lua_cpu" "$(ratio "$best_lua" "$best_go")" "$(ratio "$best_lua_cpu" "$best_go_cpu")"
echo "(wrk -t1 -c$CONNS -d$DURATION http://.../$FILE, $ROUNDS rounds)"
