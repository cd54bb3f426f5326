//go:build linux

package lab

import (
	"github.com/google/nftables"
	"github.com/google/nftables/binaryutil"
	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"
)

// natRules are a host's NAT: what it masquerades and redirects. They live
// in one nftables table, "ip sockplay", inside the host, rewritten whole on
// every change.
type natRules struct {
	masquerade []string // devices whose outgoing packets take the host's address
	redirects  []Redirect
}

// Redirect sends TCP connections arriving on a device for Port to the
// host's own ToPort: a transparent proxy's front door.
type Redirect struct {
	In     string // the device, "" for any
	Port   uint16
	ToPort uint16
}

// Masquerade rewrites the source of packets leaving through out to out's
// own address (source NAT), so that replies come back to this host, which
// sends them on to the real sender.
func (h *Host) Masquerade(out *Iface) error {
	if out.Host != h {
		return argError("%s is %s's device, not %s's", out.Name, out.Host.Name, h.Name)
	}
	h.lab.mu.Lock()
	defer h.lab.mu.Unlock()
	for _, d := range h.nat.masquerade {
		if d == out.Name {
			return nil
		}
	}
	h.nat.masquerade = append(h.nat.masquerade, out.Name)
	return h.applyNAT()
}

// Redirect adds a redirect: TCP connections arriving through in (nil: any
// device) for port go to the host's own toPort instead, and the socket
// that accepts them can ask where they were going (SO_ORIGINAL_DST).
func (h *Host) Redirect(in *Iface, port, toPort uint16) error {
	if in != nil && in.Host != h {
		return argError("%s is %s's device, not %s's", in.Name, in.Host.Name, h.Name)
	}
	if port == 0 || toPort == 0 {
		return argError("ports must be 1-65535")
	}
	r := Redirect{Port: port, ToPort: toPort}
	if in != nil {
		r.In = in.Name
	}
	h.lab.mu.Lock()
	defer h.lab.mu.Unlock()
	h.nat.redirects = append(h.nat.redirects, r)
	return h.applyNAT()
}

// NAT lists the host's masqueraded devices and redirects.
func (h *Host) NAT() (masquerade []string, redirects []Redirect) {
	h.lab.mu.Lock()
	defer h.lab.mu.Unlock()
	return append([]string(nil), h.nat.masquerade...), append([]Redirect(nil), h.nat.redirects...)
}

// applyNAT writes the host's table anew in one batch. The caller holds
// the lab's lock.
func (h *Host) applyNAT() error {
	return wrap("nftables", h.ns.Nftables(func(c *nftables.Conn) {
		t := &nftables.Table{Family: nftables.TableFamilyIPv4, Name: "sockplay"}
		c.AddTable(t)
		c.DelTable(t)
		c.AddTable(t)
		pre := c.AddChain(&nftables.Chain{Name: "prerouting", Table: t, Type: nftables.ChainTypeNAT,
			Hooknum: nftables.ChainHookPrerouting, Priority: nftables.ChainPriorityNATDest})
		post := c.AddChain(&nftables.Chain{Name: "postrouting", Table: t, Type: nftables.ChainTypeNAT,
			Hooknum: nftables.ChainHookPostrouting, Priority: nftables.ChainPriorityNATSource})
		for _, r := range h.nat.redirects {
			var e []expr.Any
			if r.In != "" {
				e = append(e, &expr.Meta{Key: expr.MetaKeyIIFNAME, Register: 1},
					&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: ifname(r.In)})
			}
			e = append(e,
				&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1},
				&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{unix.IPPROTO_TCP}},
				&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2},
				&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: binaryutil.BigEndian.PutUint16(r.Port)},
				&expr.Counter{},
				&expr.Immediate{Register: 1, Data: binaryutil.BigEndian.PutUint16(r.ToPort)},
				&expr.Redir{RegisterProtoMin: 1, Flags: unix.NF_NAT_RANGE_PROTO_SPECIFIED})
			c.AddRule(&nftables.Rule{Table: t, Chain: pre, Exprs: e})
		}
		for _, out := range h.nat.masquerade {
			c.AddRule(&nftables.Rule{Table: t, Chain: post, Exprs: []expr.Any{
				&expr.Meta{Key: expr.MetaKeyOIFNAME, Register: 1},
				&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: ifname(out)},
				&expr.Counter{},
				&expr.Masq{},
			}})
		}
	}))
}

// ifname is a device name as nftables compares it: 16 bytes, zero-padded.
func ifname(name string) []byte {
	b := make([]byte, unix.IFNAMSIZ)
	copy(b, name)
	return b
}
