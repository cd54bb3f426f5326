//go:build linux

package lab

import (
	"net"
	"net/netip"

	"github.com/vishvananda/netlink"
)

// route is one entry the lab puts in a host's routing table; an invalid
// dst is the default route.
type route struct {
	dst netip.Prefix
	via netip.Addr
	dev string
}

// routeLocked brings every host's routing table up to date with the
// links: a host reaches every subnet of the lab through routers. The
// caller holds l.mu.
func (l *Lab) routeLocked() error {
	for _, h := range l.hosts {
		if err := h.setRoutes(routesFor(h)); err != nil {
			return err
		}
	}
	return nil
}

// routesFor computes h's routes. A plain host with one link, to a router,
// gets a default route through it, as a home computer has; any other host
// gets a route to each subnet behind a router, through the first hop of a
// shortest path whose inner hosts all forward (routers). Subnets behind a
// host that does not forward get none: nothing there is reachable.
func routesFor(h *Host) []route {
	if !h.Router && len(h.ifaces) == 1 && h.ifaces[0].Peer().Host.Router {
		i := h.ifaces[0]
		return []route{{via: i.Peer().Addr.Addr(), dev: i.Name}}
	}
	have := map[netip.Prefix]bool{}
	for _, i := range h.ifaces {
		have[i.Addr.Masked()] = true
	}
	first := map[*Host]*Iface{h: nil} // the host's device a path to each host leaves by
	queue := []*Host{h}
	var out []route
	for len(queue) > 0 {
		x := queue[0]
		queue = queue[1:]
		if x != h && !x.Router {
			continue // reachable, but it forwards nothing further
		}
		for _, i := range x.ifaces {
			y := i.Peer().Host
			if _, seen := first[y]; seen {
				continue
			}
			hop := first[x]
			if x == h {
				hop = i
			}
			first[y] = hop
			queue = append(queue, y)
			if !y.Router {
				continue // its other subnets are out of reach: it forwards nothing
			}
			for _, j := range y.ifaces {
				if p := j.Addr.Masked(); !have[p] {
					have[p] = true
					out = append(out, route{dst: p, via: hop.Peer().Addr.Addr(), dev: hop.Name})
				}
			}
		}
	}
	return out
}

// setRoutes makes the lab's routes in h's table want: it removes the ones
// no longer wanted and adds or replaces the rest.
func (h *Host) setRoutes(want []route) error {
	return h.netlink(func(nh *netlink.Handle) error {
		keep := map[route]bool{}
		for _, r := range want {
			keep[r] = true
		}
		for _, r := range h.routes {
			if !keep[r] {
				if nr, err := h.netlinkRoute(nh, r); err == nil {
					nh.RouteDel(nr) // gone already when its device went
				}
			}
		}
		h.routes = nil
		for _, r := range want {
			nr, err := h.netlinkRoute(nh, r)
			if err != nil {
				return err
			}
			if err := nh.RouteReplace(nr); err != nil {
				return err
			}
			h.routes = append(h.routes, r)
		}
		return nil
	})
}

func (h *Host) netlinkRoute(nh *netlink.Handle, r route) (*netlink.Route, error) {
	dev, err := nh.LinkByName(r.dev)
	if err != nil {
		return nil, err
	}
	nr := &netlink.Route{LinkIndex: dev.Attrs().Index, Gw: r.via.AsSlice()}
	if r.dst.IsValid() {
		nr.Dst = prefixNet(r.dst)
	} else {
		nr.Dst = &net.IPNet{IP: net.IPv4zero.To4(), Mask: net.CIDRMask(0, 32)}
	}
	return nr, nil
}
