//go:build linux

package lab

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"
)

// graph builds hosts and links without the kernel: routesFor reads only
// the structs.
func graph(routers string, links ...string) map[string]*Host {
	hosts := map[string]*Host{}
	host := func(name string) *Host {
		if hosts[name] == nil {
			hosts[name] = &Host{Name: name, Router: strings.Contains(" "+routers+" ", " "+name+" ")}
		}
		return hosts[name]
	}
	for n, l := range links {
		a, b, _ := strings.Cut(l, "-")
		k := &Link{ID: n + 1}
		p := func(last int) netip.Prefix {
			return netip.MustParsePrefix(fmt.Sprintf("10.0.%d.%d/24", n+1, last))
		}
		k.A = &Iface{Name: fmt.Sprintf("eth%d", len(host(a).ifaces)), Addr: p(1), Host: host(a), Link: k}
		k.B = &Iface{Name: fmt.Sprintf("eth%d", len(host(b).ifaces)), Addr: p(2), Host: host(b), Link: k}
		host(a).ifaces = append(host(a).ifaces, k.A)
		host(b).ifaces = append(host(b).ifaces, k.B)
	}
	return hosts
}

func routeList(h *Host) string {
	var out []string
	for _, r := range routesFor(h) {
		dst := "default"
		if r.dst.IsValid() {
			dst = r.dst.String()
		}
		out = append(out, dst+" via "+r.via.String()+" dev "+r.dev)
	}
	return strings.Join(out, ", ")
}

func TestRoutesFor(t *testing.T) {
	// a - r1 - r2 - b, and c hangs off b (which does not forward).
	g := graph("r1 r2", "a-r1", "r1-r2", "r2-b", "b-c")
	for name, want := range map[string]string{
		"a":  "default via 10.0.1.2 dev eth0",
		"r1": "10.0.3.0/24 via 10.0.2.2 dev eth1",
		"r2": "10.0.1.0/24 via 10.0.2.1 dev eth0",
		"b":  "10.0.2.0/24 via 10.0.3.1 dev eth0, 10.0.1.0/24 via 10.0.3.1 dev eth0",
		"c":  "",
	} {
		if got := routeList(g[name]); got != want {
			t.Errorf("routes of %s: %q, want %q", name, got, want)
		}
	}
}
