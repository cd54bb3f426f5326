package lua

import (
	"context"
	"net/netip"

	glua "github.com/yuin/gopher-lua"

	"sockplay/sock"
)

// LuaSocket's UDP objects: unconnected (sendto, receivefrom) and connected
// (send, receive from the one peer).

// lsDatagramSize is the largest datagram receive takes by default, as
// LuaSocket's _DATAGRAMSIZE.
const lsDatagramSize = 8192

func (h *Host) udpMethods() []fn {
	return []fn{
		{"close", h.udpClose, "udp:close() -> 1  -- close the descriptor"},
		{"dirty", h.udpDirty, "udp:dirty() -> false  -- datagrams are never buffered"},
		{"getfamily", h.udpGetfamily, "udp:getfamily() -> \"inet4\" | \"inet6\""},
		{"getfd", h.udpGetfd, "udp:getfd() -> fd  -- the kernel's descriptor number, -1 when there is none"},
		{"getoption", h.udpGetoption, "udp:getoption(name) -> value | nil, err  -- dontroute, broadcast, reuseaddr, reuseport, ip-multicast-if, ip-multicast-loop, error, ipv6-unicast-hops, ipv6-multicast-hops, ipv6-multicast-loop, ipv6-v6only, recv-buffer-size, send-buffer-size"},
		{"getpeername", h.udpGetpeername, "connected:getpeername() -> address, port, family | nil, err"},
		{"getsockname", h.udpGetsockname, "udp:getsockname() -> address, port, family | nil, err  -- the port as a string, as LuaSocket returns it"},
		{"gettimeout", h.udpGettimeout, "udp:gettimeout() -> block, total"},
		{"receive", h.udpReceive, "udp:receive([size]) -> datagram | nil, err  -- one datagram, cut to size bytes (default 8192)"},
		{"receivefrom", h.udpReceivefrom, "unconnected:receivefrom([size]) -> datagram, address, port | nil, err"},
		{"send", h.udpSend, "connected:send(datagram) -> n | nil, err"},
		{"sendto", h.udpSendto, "unconnected:sendto(datagram, ip, port) -> n | nil, err  -- ip is a numeric address"},
		{"setfd", h.udpSetfd, "udp:setfd(fd)  -- point the object at another of sockplay's UDP fds, or -1 for none"},
		{"setoption", h.udpSetoption, "udp:setoption(name, value) -> 1 | nil, err  -- see getoption; also ip-multicast-ttl, ip-add-membership, ip-drop-membership, ipv6-add-membership, ipv6-drop-membership"},
		{"setpeername", h.udpSetpeername, "udp:setpeername(address, port | \"*\") -> 1 | nil, err  -- connect to one peer; \"*\" disconnects"},
		{"setsockname", h.udpSetsockname, "unconnected:setsockname(address, port) -> 1 | nil, err  -- bind (\"*\": all addresses; port 0: any free)"},
		{"settimeout", h.udpSettimeout, "udp:settimeout(seconds | nil [, \"b\" | \"t\"]) -> 1  -- 0: never wait; nil: for ever"},
	}
}

func (h *Host) udpClose(L *glua.LState) int     { return h.lsClose(L, checkAny(L, false)) }
func (h *Host) udpDirty(L *glua.LState) int     { checkAny(L, false); L.Push(glua.LFalse); return 1 }
func (h *Host) udpGetfamily(L *glua.LState) int { return lsGetfamily(L, checkAny(L, false)) }
func (h *Host) udpGetfd(L *glua.LState) int     { return lsGetfd(L, checkAny(L, false)) }
func (h *Host) udpSetfd(L *glua.LState) int     { return h.lsSetfd(L, checkAny(L, false)) }
func (h *Host) udpGettimeout(L *glua.LState) int {
	return lsGettimeout(L, checkAny(L, false))
}
func (h *Host) udpSettimeout(L *glua.LState) int {
	return lsSettimeout(L, checkAny(L, false))
}
func (h *Host) udpGetpeername(L *glua.LState) int {
	return h.lsGetpeername(L, checkClass(L, udpConnected))
}
func (h *Host) udpGetsockname(L *glua.LState) int { return h.lsGetsockname(L, checkAny(L, false)) }

// udpError is LuaSocket's udp_strerror: a socket that is gone is
// "refused" (the transport would not take the address), the rest as for
// TCP.
func udpError(err error) string {
	switch sock.Code(err) {
	case "EOF", "EBADF", "EPIPE":
		return "refused"
	}
	return lsStrerror(err)
}

func (h *Host) udpSetsockname(L *glua.LState) int {
	o := checkClass(L, udpUnconnected)
	host := L.CheckString(2)
	port := lsPort(L, 3)
	if err := h.lsBind(L, o, host, port); err != "" {
		return pushNilErr(L, err)
	}
	return pushOne(L)
}

func (h *Host) udpSetpeername(L *glua.LState) int {
	o := checkAny(L, false)
	host := L.CheckString(2)
	if host == "*" {
		// LuaSocket ignores the failure: some systems refuse AF_UNSPEC.
		if o.s != nil {
			o.s.Disconnect()
		}
		h.setClass(L, o, udpUnconnected)
		return pushOne(L)
	}
	port := lsPort(L, 3)
	o.markStart()
	if msg := h.lsConnect(L, o, host, port); msg != "" {
		return pushNilErr(L, msg)
	}
	h.setClass(L, o, udpConnected)
	return pushOne(L)
}

func (h *Host) udpSend(L *glua.LState) int {
	o := checkClass(L, udpConnected)
	data := L.CheckString(2)
	o.markStart()
	var n int
	err := h.lsCall(L, o, "send", func(ctx context.Context) error {
		var err error
		n, err = o.s.Write(ctx, bytesOf(data))
		return err
	})
	if err != nil {
		return pushNilErr(L, udpError(err))
	}
	L.Push(glua.LNumber(n))
	return 1
}

// gaiNumericError is how getaddrinfo with AI_NUMERICHOST refuses (the C
// library's words, which sendto passes on).
func gaiNumericError(err error) string {
	if sock.Code(err) == "EAI_ADDRFAMILY" {
		return "Address family for hostname not supported"
	}
	return "Name or service not known"
}

func (h *Host) udpSendto(L *glua.LState) int {
	o := checkClass(L, udpUnconnected)
	data := L.CheckString(2)
	ip := L.CheckString(3)
	portStr := lsPort(L, 4)
	a, err := netip.ParseAddr(ip)
	port, perr := parsePort(portStr)
	switch {
	case err != nil || perr != nil || a.Zone() != "":
		return pushNilErr(L, gaiNumericError(nil))
	case o.family != famUnspec && o.family != familyOf(a.Unmap()):
		return pushNilErr(L, gaiNumericError(errAddrFamily))
	}
	a = a.Unmap()
	if o.s == nil {
		// A socket.udp() gets its socket, of the address's family, on its
		// first sendto.
		if err := h.lsOpen(L, o, familyOf(a)); err != nil {
			return pushNilErr(L, lsStrerror(err))
		}
	}
	o.markStart()
	to := netip.AddrPortFrom(a, port)
	var n int
	err = h.lsCall(L, o, "sendto", func(ctx context.Context) error {
		var err error
		n, err = o.s.SendTo(ctx, bytesOf(data), to)
		return err
	})
	if err != nil {
		return pushNilErr(L, udpError(err))
	}
	L.Push(glua.LNumber(n))
	return 1
}

// lsRecv receives one datagram of at most size bytes (the rest of a
// longer one is lost, as recv(2) loses it).
func (h *Host) lsRecv(L *glua.LState, o *lsSocket) (data []byte, from netip.AddrPort, err error) {
	size := int(optNumber(L, 2, lsDatagramSize))
	if size < 0 {
		L.ArgError(2, "size must not be negative")
	}
	size = min(size, 1<<16)
	o.markStart()
	err = h.lsCall(L, o, "receive", func(ctx context.Context) error {
		return o.s.RecvFromInto(ctx, size, func(p []byte, f netip.AddrPort, _ int) {
			data, from = append([]byte{}, p...), f
		})
	})
	return data, from, err
}

func (h *Host) udpReceive(L *glua.LState) int {
	o := checkAny(L, false)
	data, _, err := h.lsRecv(L, o)
	if err != nil {
		return pushNilErr(L, udpReceiveError(err))
	}
	L.Push(glua.LString(data))
	return 1
}

// udpReceiveError words a failed receive: a descriptor that is gone is
// "closed" (LuaSocket would hand out an empty datagram).
func udpReceiveError(err error) string {
	if sock.Code(err) == "EBADF" {
		return "closed"
	}
	return udpError(err)
}

func (h *Host) udpReceivefrom(L *glua.LState) int {
	o := checkClass(L, udpUnconnected)
	data, from, err := h.lsRecv(L, o)
	if err != nil {
		return pushNilErr(L, udpReceiveError(err))
	}
	L.Push(glua.LString(data))
	L.Push(glua.LString(from.Addr().String()))
	L.Push(glua.LNumber(from.Port()))
	return 3
}
