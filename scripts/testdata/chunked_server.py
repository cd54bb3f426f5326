"""A small HTTP/1.1 server in Python that answers with chunked bodies.

http_client.lua's tests talk to it: a server that sockplay does not
provide. Every GET gets "Transfer-Encoding: chunked" with three chunks, a
chunk extension and a trailer field; the connection stays open (keep-alive).
The first line printed is "listening on HOST:PORT".
"""

import http.server
import sys


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = 10  # seconds a client may stay silent

    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Transfer-Encoding", "chunked")
        self.send_header("Trailer", "X-Checksum")
        self.end_headers()
        for i, piece in enumerate([b"hello, ", b"chunked ", b"world\n"]):
            ext = b";piece=%d" % i if i == 1 else b""
            self.wfile.write(b"%x%s\r\n%s\r\n" % (len(piece), ext, piece))
        self.wfile.write(b"0\r\nX-Checksum: 21\r\n\r\n")

    def log_message(self, format, *args):
        pass


def main():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    host, port = server.server_address[:2]
    print("listening on %s:%d" % (host, port), flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    sys.exit(main())
