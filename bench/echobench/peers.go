package main

// The reference servers, each the idiomatic echo server of its runtime:
// native Go (goroutine per connection, one goroutine for UDP), Node's net
// and dgram, Python's asyncio protocols. Each prints "listening on
// HOST:PORT" first, as sockplay's server scripts do. The Node and Python
// sources are passed with -e / -c, so nothing is installed or written.

import (
	"fmt"
	"net"
	"os"
	"runtime"
)

// serveGoEcho is the native Go reference.
func serveGoEcho(proto string) {
	runtime.GOMAXPROCS(1) // pinned to one core like the others
	if proto == "udp" {
		c, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		fmt.Printf("listening on %s\n", c.LocalAddr())
		buf := make([]byte, 64*1024)
		for {
			n, from, err := c.ReadFrom(buf)
			if err != nil {
				return
			}
			c.WriteTo(buf[:n], from)
		}
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Printf("listening on %s\n", l.Addr())
	for {
		c, err := l.Accept()
		if err != nil {
			return
		}
		go func() {
			defer c.Close()
			buf := make([]byte, 64*1024)
			for {
				n, err := c.Read(buf)
				if err != nil {
					return
				}
				if _, err := c.Write(buf[:n]); err != nil {
					return
				}
			}
		}()
	}
}

const nodeTCP = `
const net = require('net');
const srv = net.createServer((c) => { c.setNoDelay(true); c.on('data', (d) => c.write(d)); c.on('error', () => {}); });
srv.listen(0, '127.0.0.1', () => console.log('listening on 127.0.0.1:' + srv.address().port));
`

const nodeUDP = `
const dgram = require('dgram');
const s = dgram.createSocket('udp4');
s.on('message', (msg, rinfo) => s.send(msg, rinfo.port, rinfo.address));
s.bind(0, '127.0.0.1', () => console.log('listening on 127.0.0.1:' + s.address().port));
`

const pythonTCP = `
import asyncio, socket, sys
class Echo(asyncio.Protocol):
    def connection_made(self, t):
        self.t = t
        t.get_extra_info('socket').setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    def data_received(self, d):
        self.t.write(d)
async def main():
    srv = await asyncio.get_running_loop().create_server(Echo, '127.0.0.1', 0)
    print('listening on 127.0.0.1:%d' % srv.sockets[0].getsockname()[1], flush=True)
    await srv.serve_forever()
try:
    asyncio.run(main())
except KeyboardInterrupt:
    sys.exit(0)
`

const pythonUDP = `
import asyncio, sys
class Echo(asyncio.DatagramProtocol):
    def connection_made(self, t):
        self.t = t
    def datagram_received(self, d, addr):
        self.t.sendto(d, addr)
async def main():
    t, _ = await asyncio.get_running_loop().create_datagram_endpoint(Echo, local_addr=('127.0.0.1', 0))
    print('listening on 127.0.0.1:%d' % t.get_extra_info('sockname')[1], flush=True)
    await asyncio.Event().wait()
try:
    asyncio.run(main())
except KeyboardInterrupt:
    sys.exit(0)
`
