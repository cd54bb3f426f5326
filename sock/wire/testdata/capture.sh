#!/usr/bin/env bash
# How the pcap files next to this script were made: real exchanges on
# loopback, captured with tcpdump. Run as root from the repository's top
# directory (needs tcpdump, curl, dig, dnsmasq, python3, ip, nft); the
# golden views are then regenerated with
#   go test ./sock/wire -run Golden -update
# The captures are committed: the views' tests read them, they do not make them.
set -euo pipefail
out=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT
CGO_ENABLED=0 go build -o "$work/sockplay" ./cmd/sockplay

# capture FILE COUNT FILTER [tcpdump options]: starts tcpdump in the
# background, waits until it listens, and leaves its pid in $td.
capture() {
  local file=$1 count=$2 filter=$3; shift 3
  tcpdump -i lo -U -c "$count" "$@" -w "$work/$file" "$filter" 2>"$work/td.err" &
  td=$!
  until grep -q listening "$work/td.err"; do sleep 0.05; done
}
finish() { wait "$td"; cp "$work/$1" "$out/$1"; tcpdump -nn -r "$out/$1" 2>/dev/null; }

# server HOST: the project's HTTP server on a free port; sets $port.
server() {
  "$work/sockplay" scripts/http_server.lua --root scripts/testdata/www --host "$1" --port 0 >"$work/srv.out" 2>&1 &
  until grep -q listening "$work/srv.out"; do sleep 0.05; done
  port=$(sed -n 's/.*:\([0-9]*\)$/\1/p' "$work/srv.out" | head -1)
}

# http.pcap: curl fetches one small file over IPv4: handshake, request,
# response, FIN both ways (10 packets).
server 127.0.0.1
capture http.pcap 10 "tcp port $port"
curl -s -o /dev/null "http://127.0.0.1:$port/notes.txt"
finish http.pcap

# http_snap.pcap: the same exchange with a 96-byte snapshot length, so
# every frame with data is cut short.
capture http_snap.pcap 10 "tcp port $port" -s 96
curl -s -o /dev/null "http://127.0.0.1:$port/index.html"
finish http_snap.pcap

# ipv6.pcap: the same over ::1.
server ::1
capture ipv6.pcap 10 "tcp port $port"
curl -s -o /dev/null "http://[::1]:$port/notes.txt"
finish ipv6.pcap

# dns.pcap: dig asks dnsmasq for an A record on port 53, and for a TXT
# record on another port (DNS that only its content identifies).
dnsmasq --no-daemon --keep-in-foreground --port 53 --listen-address 127.0.0.1 --bind-interfaces \
  --no-resolv --no-hosts --address=/example.test/192.0.2.7 --txt-record=txt.example.test,"hello from dnsmasq" 2>/dev/null &
dnsmasq --no-daemon --keep-in-foreground --port 5300 --listen-address 127.0.0.1 --bind-interfaces \
  --no-resolv --no-hosts --txt-record=txt.example.test,"hello from dnsmasq" 2>/dev/null &
sleep 0.5
capture dns.pcap 4 "udp and (port 53 or port 5300)"
dig +short @127.0.0.1 example.test A >/dev/null
dig +short @127.0.0.1 -p 5300 txt.example.test TXT >/dev/null
finish dns.pcap

# rst.pcap: a connect to a port nobody listens on: SYN, then RST.
capture rst.pcap 2 "tcp port 9"
curl -s "http://127.0.0.1:9/" || true
finish rst.pcap

# loss.pcap: a network namespace whose loopback drops about 30% of the
# arriving segments that carry data (nft, after the capture point), so
# both the lost segments and their retransmissions are in the file. A
# server writes six lines 50 ms apart; a client reads them. Repeated
# until at least one retransmission shows.
ns=sockplay-capture-$$
ip netns add "$ns"
trap 'kill $(jobs -p) 2>/dev/null || true; ip netns del "$ns"; rm -rf "$work"' EXIT
ip -n "$ns" link set lo up
ip netns exec "$ns" nft -f - <<'EOF'
table inet loss {
  chain in {
    type filter hook input priority 0;
    tcp sport 7000 meta length > 52 numgen random mod 10 < 3 drop
  }
}
EOF
cat >"$work/lines.py" <<'EOF'
import socket, time
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", 7000)); s.listen()
c, _ = s.accept()
for i in range(6):
    c.sendall(b"line %d\n" % i); time.sleep(0.05)
c.close()
EOF
for try in 1 2 3 4 5 6 7 8 9 10; do
  ip netns exec "$ns" python3 "$work/lines.py" &
  srv=$!
  sleep 0.3
  ip netns exec "$ns" tcpdump -i lo -U -w "$work/loss.pcap" "tcp port 7000" 2>"$work/td.err" &
  td=$!
  until grep -q listening "$work/td.err"; do sleep 0.05; done
  ip netns exec "$ns" python3 -c '
import socket; c = socket.create_connection(("127.0.0.1", 7000)); c.settimeout(10)
while c.recv(100): pass
c.close()'
  wait "$srv"
  sleep 0.3; kill "$td"; wait "$td" || true
  if tcpdump -nn -r "$work/loss.pcap" 2>/dev/null | awk '{for (i = 1; i < NF; i++) if ($i == "seq" && $(i+1) ~ /:/ && seen[$3 " " $(i+1)]++) r = 1} END {exit !r}'; then
    cp "$work/loss.pcap" "$out/loss.pcap"; tcpdump -nn -r "$out/loss.pcap" 2>/dev/null
    break
  fi
done
