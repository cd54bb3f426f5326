package scripts_test

import (
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"sockplay/internal/scripttest"
	"sockplay/internal/testpeer"
)

// dns_server.lua and dns_lookup.lua, run as a user runs them, with dig
// asking the server and dns_lookup.lua asking it too.

func digDNS(t *testing.T, s *scripttest.Server, args ...string) string {
	t.Helper()
	bin := testpeer.Path(t, "dig")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	all := append([]string{"@" + s.Host, "-p", s.Port, "+time=5", "+tries=1"}, args...)
	out, err := exec.CommandContext(ctx, bin, all...).CombinedOutput()
	if err != nil {
		t.Fatalf("dig %s: %v\n%s", strings.Join(all, " "), err, out)
	}
	return string(out)
}

func TestDNSScriptsHelp(t *testing.T) {
	for _, script := range []string{"dns_lookup.lua", "dns_server.lua"} {
		r := scripttest.Run(t, "", 30*time.Second, scripttest.Script(script), "--help")
		if r.Code != 0 || !strings.HasPrefix(r.Stdout, "usage: "+script) {
			t.Errorf("%s --help: exit %d\nstdout:\n%s\nstderr:\n%s", script, r.Code, r.Stdout, r.Stderr)
		}
	}
	r := scripttest.Run(t, "", 30*time.Second, scripttest.Script("dns_server.lua"), "--bogus")
	if r.Code != 1 || !strings.Contains(r.Stderr, "unknown argument --bogus") {
		t.Errorf("dns_server.lua --bogus: exit %d, stderr:\n%s", r.Code, r.Stderr)
	}
}

func TestDNSServerScriptWithDig(t *testing.T) {
	testpeer.Path(t, "dig")
	s := scripttest.Start(t, scripttest.Script("dns_server.lua"), "--port", "0")
	if s.Host != "127.0.0.1" {
		t.Errorf("default host %s, want 127.0.0.1", s.Host)
	}
	checks := []struct {
		args []string
		want []string
	}{
		{[]string{"+short", "www.example.test"}, []string{"127.0.0.1\n"}},
		{[]string{"+short", "+tcp", "www.example.test", "AAAA"}, []string{"::1\n"}},
		{[]string{"example.test", "MX"}, []string{"status: NOERROR", "flags: qr aa rd;", "10 mail.example.test.", "ADDITIONAL SECTION:\nmail.example.test.\t300\tIN\tA\t127.0.0.2"}},
		{[]string{"+short", "-x", "127.0.0.2"}, []string{"mail.example.test.\n"}},
		{[]string{"+short", "whoami.example.test", "TXT"}, []string{`"127.0.0.1 port `, ` over udp"`}},
		{[]string{"+short", "+tcp", "whoami.example.test", "TXT"}, []string{` over tcp"`}},
		{[]string{"+short", "x.apps.example.test"}, []string{"127.0.0.3\n"}},
		{[]string{"nope.example.test"}, []string{"status: NXDOMAIN", "AUTHORITY: 1,"}},
		// 100 addresses: more than dig's 1232-byte EDNS0 size
		{[]string{"big.example.test"}, []string{";; Truncated, retrying in TCP mode.", "ANSWER: 100,", "(TCP)"}},
	}
	for _, c := range checks {
		out := digDNS(t, s, c.args...)
		for _, w := range c.want {
			if !strings.Contains(out, w) {
				t.Errorf("dig %s: no %q in\n%s", strings.Join(c.args, " "), w, out)
			}
		}
	}
	// the server printed a line for each question, the truncated one too
	if out := s.Output(); !regexp.MustCompile(`dns udp 127\.0\.0\.1:\d+ A big\.example\.test\. -> NOERROR, \d+ answers, truncated\n`).MatchString(out) ||
		!strings.Contains(out, "A big.example.test. -> NOERROR, 100 answers\n") {
		t.Errorf("server log:\n%s", out)
	}
	if code := s.Stop(t); code != 130 {
		t.Errorf("after Ctrl-C the server exited %d, want 130\nstderr:\n%s", code, s.Stderr())
	}
}

// scrubDNS replaces what changes from run to run with fixed words.
func scrubDNS(out, port string) string {
	out = regexp.MustCompile(`id: \d+`).ReplaceAllString(out, "id: ID")
	out = regexp.MustCompile(`Query time: \d+ msec`).ReplaceAllString(out, "Query time: N msec")
	return strings.ReplaceAll(out, "#"+port+"(", "#PORT(")
}

const lookupMX = `;; ->>HEADER<<- opcode: QUERY, status: NOERROR, id: ID
;; flags: qr aa rd; QUERY: 1, ANSWER: 1, AUTHORITY: 0, ADDITIONAL: 1

;; QUESTION SECTION:
;example.test.			IN	MX

;; ANSWER SECTION:
example.test.		300	IN	MX	10 mail.example.test.

;; ADDITIONAL SECTION:
mail.example.test.	300	IN	A	127.0.0.2

;; Query time: N msec
;; SERVER: 127.0.0.1#PORT(127.0.0.1) (UDP)
;; MSG SIZE  rcvd: 108

`

func TestDNSLookupScript(t *testing.T) {
	s := scripttest.Start(t, scripttest.Script("dns_server.lua"), "--port", "0", "--quiet")
	lookup := func(args ...string) scripttest.Result {
		return scripttest.Run(t, "", 60*time.Second, append([]string{scripttest.Script("dns_lookup.lua")}, args...)...)
	}
	at := "@" + s.Host
	r := lookup(at, "-p", s.Port, "example.test", "MX")
	if got := scrubDNS(r.Stdout, s.Port); r.Code != 0 || got != lookupMX {
		t.Errorf("dns_lookup MX: exit %d\n got:\n%s\nwant:\n%s\nstderr:\n%s", r.Code, got, lookupMX, r.Stderr)
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"+short", "www.example.test"}, "127.0.0.1\n"},
		{[]string{"+short", "AAAA", "www.example.test"}, "::1\n"},
		{[]string{"+short", "-x", "127.0.0.2"}, "mail.example.test.\n"},
		{[]string{"+short", "+tcp", "whoami.example.test", "txt"}, "over tcp\"\n"},
		{[]string{"+short", "example.test", "TXT"}, "\"v=spf1 -all\"\n"},
		{[]string{"+short", "_sip._tcp.example.test", "SRV"}, "10 5 5060 www.example.test.\n"},
		{[]string{"+tcp", "www.example.test"}, "(127.0.0.1) (TCP)\n"},
		{[]string{"big.example.test"}, ";; Truncated, retrying in TCP mode.\n"},
		{[]string{"nope.example.test"}, "status: NXDOMAIN"},
	} {
		r := lookup(append([]string{at + ":" + s.Port}, c.args...)...)
		if r.Code != 0 || !strings.Contains(r.Stdout, c.want) {
			t.Errorf("dns_lookup %s: exit %d, want %q in\n%s\nstderr:\n%s", strings.Join(c.args, " "), r.Code, c.want, r.Stdout, r.Stderr)
		}
	}
	if r := lookup(at+":"+s.Port, "big.example.test", "+short"); strings.Count(r.Stdout, "\n") != 100 {
		t.Errorf("big +short: %d lines, want 100", strings.Count(r.Stdout, "\n"))
	}

	// nothing answers: dig's message and exit status 9
	silent, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	_, sport, _ := net.SplitHostPort(silent.LocalAddr().String())
	r = lookup("@127.0.0.1", "-p", sport, "+time=0.5", "www.example.test")
	if r.Code != 9 || r.Stdout != ";; connection timed out; no servers could be reached\n" {
		t.Errorf("silent server: exit %d\n%s%s", r.Code, r.Stdout, r.Stderr)
	}
	// a script's mistake is a usage message, not a traceback
	r = lookup(at+":"+s.Port, "a..b")
	if r.Code != 1 || !strings.Contains(r.Stderr, `dns_lookup: malformed domain name "a..b"`) || strings.Contains(r.Stderr, "traceback") {
		t.Errorf("bad name: exit %d\n%s", r.Code, r.Stderr)
	}
	r = lookup(at+":"+s.Port, "www.example.test", "A", "MX", "extra")
	if r.Code != 1 || !strings.Contains(r.Stderr, "unexpected argument") {
		t.Errorf("too many arguments: exit %d\n%s", r.Code, r.Stderr)
	}
}

func TestDNSServerScriptZoneFileOnIPv6(t *testing.T) {
	testpeer.Path(t, "dig")
	zone := filepath.Join(t.TempDir(), "lab.zone")
	err := os.WriteFile(zone, []byte(`$ORIGIN lab.test.
$TTL 120
@       IN SOA ns hostmaster 2024010101 3600 600 86400 60
@       IN NS  ns
ns      IN A   127.0.0.1
printer IN A   127.0.0.9
files   IN CNAME printer
`), 0o644)
	if err != nil {
		t.Fatal(err)
	}
	s := scripttest.Start(t, scripttest.Script("dns_server.lua"), "--host", "::1", "--port", "0", "--zone", zone)
	if !strings.HasPrefix(s.Addr, "[::1]:") {
		t.Errorf("listening on %s, want [::1]:PORT", s.Addr)
	}
	out := digDNS(t, s, "files.lab.test")
	for _, w := range []string{"status: NOERROR", "files.lab.test.\t\t120\tIN\tCNAME\tprinter.lab.test.", "printer.lab.test.\t120\tIN\tA\t127.0.0.9"} {
		if !strings.Contains(out, w) {
			t.Errorf("dig over IPv6: no %q in\n%s", w, out)
		}
	}
	// a zone file that does not parse is reported, not a crash
	bad := filepath.Join(t.TempDir(), "bad.zone")
	os.WriteFile(bad, []byte("$ORIGIN x.test.\nwww IN A not-an-address\n"), 0o644)
	r := scripttest.Run(t, "", 30*time.Second, scripttest.Script("dns_server.lua"), "--zone", bad)
	if r.Code != 1 || !strings.Contains(r.Stderr, "dns_server: ") || !strings.Contains(r.Stderr, "bad.zone") {
		t.Errorf("bad zone file: exit %d\nstdout:\n%s\nstderr:\n%s", r.Code, r.Stdout, r.Stderr)
	}
}
