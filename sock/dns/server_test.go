package dns

import (
	"context"
	"errors"
	"net/netip"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"sockplay/internal/testpeer"
	"sockplay/sock"
)

// The server, asked by dig: what dig prints is the contract.

func dig(t *testing.T, server netip.AddrPort, args ...string) string {
	t.Helper()
	bin := testpeer.Path(t, "dig")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	all := append([]string{"@" + server.Addr().String(), "-p", itoa(int(server.Port())), "+time=5", "+tries=1"}, args...)
	out, err := exec.CommandContext(ctx, bin, all...).CombinedOutput()
	if err != nil {
		t.Fatalf("dig %s: %v\n%s", strings.Join(all, " "), err, out)
	}
	return string(out)
}

func testZone(t *testing.T) *Zone {
	zt := list("@ SOA ns1 hostmaster 1 3600 600 86400 60", "www A 127.0.0.1", "mail MX 10 www")
	zt.Fields["origin"] = "example.test"
	rec := NewTable("")
	rec.Fields["name"], rec.Fields["type"], rec.Fields["text"] = "txt", "TXT", list("hello world", "two")
	zt.List = append(zt.List, rec)
	for i := 1; i <= 200; i++ {
		zt.List = append(zt.List, "big A 10.0.0."+itoa(i))
	}
	z, err := ZoneFromTable(zt, "", DefaultTTL)
	if err != nil {
		t.Fatal(err)
	}
	return z
}

func TestDigAgainstServer(t *testing.T) {
	testpeer.Path(t, "dig")
	e := newEnv(t)
	var mu sync.Mutex
	var log []string
	handler := func(ctx context.Context, req *Request) (*Reply, error) {
		switch req.Table().Get("name") {
		case "who.example.test.":
			rec := NewTable("")
			rec.Fields["type"], rec.Fields["text"] = "TXT", req.Client.Addr().String()+" "+req.Transport
			reply := NewTable("")
			reply.Fields["answer"] = list(rec)
			return req.Reply(reply)
		case "fail.example.test.":
			return nil, errors.New("the handler failed")
		case "drop.example.test.":
			reply := NewTable("")
			reply.Fields["drop"] = true
			return req.Reply(reply)
		}
		return nil, nil
	}
	srv, err := Serve(e.ctx, e.tbl, netip.MustParseAddrPort("127.0.0.1:0"), ServerConfig{
		Zone: testZone(t), Handler: handler,
		Log: func(l string) { mu.Lock(); log = append(log, l); mu.Unlock() },
	})
	if err != nil {
		t.Fatal(err)
	}
	addr := srv.Addr()
	checks := []struct {
		args []string
		want []string
	}{
		{[]string{"www.example.test", "A"}, []string{"status: NOERROR", "flags: qr aa rd;", "ANSWER: 1,", "www.example.test.\t3600\tIN\tA\t127.0.0.1", "(UDP)"}},
		{[]string{"+tcp", "mail.example.test", "MX"}, []string{"status: NOERROR", "10 www.example.test.", "ADDITIONAL SECTION", "(TCP)"}},
		// 200 addresses exceed dig's 1232-byte EDNS0 size: TC, then TCP
		{[]string{"big.example.test", "A"}, []string{";; Truncated, retrying in TCP mode.", "ANSWER: 200,", "(TCP)"}},
		{[]string{"+noedns", "+ignore", "big.example.test", "A"}, []string{"flags: qr aa tc rd;"}},
		{[]string{"nope.example.test", "A"}, []string{"status: NXDOMAIN", "AUTHORITY: 1,"}},
		{[]string{"+short", "txt.example.test", "TXT"}, []string{`"hello world" "two"`}},
		{[]string{"+short", "who.example.test", "TXT"}, []string{`"127.0.0.1 udp"`}},
		{[]string{"+short", "+tcp", "who.example.test", "TXT"}, []string{`"127.0.0.1 tcp"`}},
		{[]string{"fail.example.test"}, []string{"status: SERVFAIL"}},
		{[]string{"elsewhere.test"}, []string{"status: REFUSED"}},
	}
	for _, c := range checks {
		out := dig(t, addr, c.args...)
		for _, w := range c.want {
			if !strings.Contains(out, w) {
				t.Errorf("dig %s: no %q in\n%s", strings.Join(c.args, " "), w, out)
			}
		}
	}
	// a dropped question gets no answer at all
	bin := testpeer.Path(t, "dig")
	out, _ := exec.Command(bin, "@127.0.0.1", "-p", itoa(int(addr.Port())), "+time=1", "+tries=1", "drop.example.test").CombinedOutput()
	if !strings.Contains(string(out), "timed out") {
		t.Errorf("dig of a dropped question:\n%s", out)
	}
	if srv.Queries() < uint64(len(checks)) {
		t.Errorf("%d queries counted", srv.Queries())
	}

	// The trace describes what the server read and sent.
	tr := strings.Join(e.trace(addr), "\n")
	for _, want := range []string{
		"recvfrom(FD<UDP>, 65535) = ", " {ID+ A? www.example.test.} from 127.0.0.1:",
		"sendto(FD<UDP>, {ID*- q: A? www.example.test. 1/0/0 A 127.0.0.1}, ",
		"accept(FD<TCP>, 127.0.0.1:", "{ID NXDomain*- q: A? nope.example.test. 0/1/0}",
	} {
		if !strings.Contains(tr, want) {
			t.Errorf("no %q in the trace:\n%s", want, tr)
		}
	}
	mu.Lock()
	if len(log) == 0 || !strings.Contains(strings.Join(log, "\n"), "A big.example.test. -> NOERROR, 200 answers") {
		t.Errorf("log:\n%s", strings.Join(log, "\n"))
	}
	mu.Unlock()

	srv.Close()
	srv.Wait()
	if !srv.Closed() || e.tbl.Len() != 0 {
		t.Errorf("after Close: closed %v, %d sockets", srv.Closed(), e.tbl.Len())
	}
	e.trace(addr)
}

func TestServerEndsWithItsContext(t *testing.T) {
	e := newEnv(t)
	ctx, cancel := context.WithCancel(e.ctx)
	srv, err := Serve(ctx, e.tbl, netip.MustParseAddrPort("127.0.0.1:0"), ServerConfig{Zone: testZone(t)})
	if err != nil {
		t.Fatal(err)
	}
	udp, tcp := srv.FDs()
	for _, s := range e.tbl.Sockets() {
		if (s.FD == udp || s.FD == tcp) && s.Owner != "tester" {
			t.Errorf("fd %d belongs to %q, not the caller", s.FD, s.Owner)
		}
	}
	a, err := Client{Table: e.tbl}.Ask(e.ctx, Question{Name: "www.example.test", Type: TypeA}, []netip.AddrPort{srv.Addr()})
	if err != nil || len(a.Msg.Answer) != 1 {
		t.Fatalf("%v %v", err, a)
	}
	cancel()
	select {
	case <-srv.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("the server did not stop")
	}
	srv.Wait()
	if _, err := (Client{Table: e.tbl, TCP: true}).Ask(e.ctx, Question{Name: "www.example.test", Type: TypeA}, []netip.AddrPort{srv.Addr()}); sock.Code(err) != "ECONNREFUSED" {
		t.Errorf("asked after the end: %v\n%s", err, strings.Join(e.trace(srv.Addr()), "\n"))
	}
	e.trace(srv.Addr())
}

func TestServeNeedsAZoneOrAHandler(t *testing.T) {
	if _, err := Serve(context.Background(), sock.NewTable(), netip.MustParseAddrPort("127.0.0.1:0"), ServerConfig{}); err == nil {
		t.Error("a server with nothing to answer from started")
	}
}
