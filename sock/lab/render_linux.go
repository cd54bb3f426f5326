//go:build linux

package lab

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// Tables describes the lab in a title line and two tables, a header row
// first in each: the hosts with their devices, routes (as the kernel has
// them) and NAT; then each direction of each link with its shape and what
// it did to the frames.
//
//	HOST    ROLE    DEVICES           ROUTES                         NAT
//	client  host    eth0 10.0.1.2/24  default via 10.0.1.1 dev eth0  -
//
//	LINK  FROM                  TO                    STATE  SHAPE       FRAMES  LOST  DUP  REORDERED  QUEUED
//	1     client eth0 10.0.1.2  router eth0 10.0.1.1  up     delay 20ms  12      0     0    0          0
func (l *Lab) Tables() (title string, hosts, links [][]string) {
	if l.Closed() {
		return fmt.Sprintf("lab %d: closed", l.ID), nil, nil
	}
	hs, ks := l.Hosts(), l.Links()
	title = fmt.Sprintf("lab %d: %s, %s; from a shell: ip netns exec %sHOST command", l.ID, count(len(hs), "host"), count(len(ks), "link"), l.prefix)
	hosts = [][]string{{"HOST", "ROLE", "DEVICES", "ROUTES", "NAT"}}
	for _, h := range hs {
		role := "host"
		if h.Router {
			role = "router"
		}
		var devs []string
		for _, i := range h.Ifaces() {
			devs = append(devs, i.Name+" "+i.Addr.String())
		}
		hosts = append(hosts, []string{h.Name, role, orDash(strings.Join(devs, ", ")), orDash(strings.Join(h.kernelRoutes(), ", ")), orDash(h.natString())})
	}
	links = [][]string{{"LINK", "FROM", "TO", "STATE", "SHAPE", "FRAMES", "LOST", "DUP", "REORDERED", "QUEUED"}}
	for _, k := range ks {
		state := "up"
		if !k.Up() {
			state = "down"
		}
		for _, from := range []*Iface{k.A, k.B} {
			st := k.Stats(from.Host)
			to := from.Peer()
			links = append(links, []string{strconv.Itoa(k.ID), from.Host.Name + " " + from.Name + " " + from.Addr.Addr().String(),
				to.Host.Name + " " + to.Name + " " + to.Addr.Addr().String(), state,
				k.Shape(from.Host).String(), strconv.FormatUint(st.Frames, 10), strconv.FormatUint(st.Lost+st.Down+st.Overflow, 10),
				strconv.FormatUint(st.Duplicated, 10), strconv.FormatUint(st.Reordered, 10), strconv.Itoa(st.Queued)})
		}
	}
	return title, hosts, links
}

// kernelRoutes lists the host's routes other than the kernel's own for
// its subnets, read back from the kernel: what `ip route` shows.
func (h *Host) kernelRoutes() []string {
	var out []string
	h.netlink(func(nh *netlink.Handle) error {
		routes, err := nh.RouteList(nil, netlink.FAMILY_V4)
		if err != nil {
			return err
		}
		names := map[int]string{}
		for _, r := range routes {
			if r.Protocol == unix.RTPROT_KERNEL {
				continue
			}
			if _, ok := names[r.LinkIndex]; !ok {
				if dev, err := nh.LinkByIndex(r.LinkIndex); err == nil {
					names[r.LinkIndex] = dev.Attrs().Name
				}
			}
			dst := "default"
			if r.Dst != nil && r.Dst.IP != nil && !r.Dst.IP.IsUnspecified() {
				dst = r.Dst.String()
			}
			s := dst
			if r.Gw != nil {
				s += " via " + r.Gw.String()
			}
			out = append(out, s+" dev "+names[r.LinkIndex])
		}
		return nil
	})
	return out
}

func (h *Host) natString() string {
	masq, redirects := h.NAT()
	var parts []string
	for _, d := range masq {
		parts = append(parts, "masquerade out "+d)
	}
	for _, r := range redirects {
		in := "any"
		if r.In != "" {
			in = r.In
		}
		parts = append(parts, fmt.Sprintf("redirect in %s tcp %d -> :%d", in, r.Port, r.ToPort))
	}
	return strings.Join(parts, ", ")
}

// count is "1 host", "3 hosts".
func count(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return strconv.Itoa(n) + " " + what + "s"
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
