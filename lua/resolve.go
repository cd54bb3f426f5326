package lua

import (
	"context"
	"errors"
	"net"
	"net/netip"

	"sockplay/sock"
)

// Resolver turns a host name into addresses of one family (ipv6 true: AAAA,
// else A), the way getaddrinfo does for a socket of that family.
type Resolver func(ctx context.Context, host string, ipv6 bool) ([]netip.Addr, error)

// SystemResolver follows the system's rules: /etc/hosts first, then the
// servers of /etc/resolv.conf with its search list.
func SystemResolver(ctx context.Context, host string, ipv6 bool) ([]netip.Addr, error) {
	network := "ip4"
	if ipv6 {
		network = "ip6"
	}
	addrs, err := net.DefaultResolver.LookupNetIP(ctx, network, host)
	if err != nil {
		var de *net.DNSError
		if errors.As(err, &de) {
			switch {
			case de.IsNotFound:
				return nil, &sock.Error{Op: "getaddrinfo", Code: "EAI_NONAME", Msg: "unknown host " + host}
			case de.IsTimeout:
				return nil, &sock.Error{Op: "getaddrinfo", Code: "EAI_AGAIN", Msg: "name lookup timed out for " + host}
			}
			return nil, &sock.Error{Op: "getaddrinfo", Code: "EAI_FAIL", Msg: "name lookup failed for " + host + ": " + de.Err}
		}
		if ctx.Err() != nil {
			return nil, sock.ErrCanceled
		}
		return nil, &sock.Error{Op: "getaddrinfo", Code: "EAI_FAIL", Msg: err.Error()}
	}
	for i, a := range addrs {
		addrs[i] = a.Unmap()
	}
	return addrs, nil
}
