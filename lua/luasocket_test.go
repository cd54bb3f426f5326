package lua

import (
	"bufio"
	"context"
	"encoding/base64"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"sockplay/internal/testpeer"
)

// LuaSocket on sockplay against the real thing and real peers: the same
// scripts under lua5.1 with Debian's lua-socket, LuaSocket's own
// socket.http and socket.smtp talking to a Python server and an SMTP sink,
// and the MIME filters against lua5.1's and the base64 command.

const debianSocket = "/usr/share/lua/5.1/socket.lua"

// needRealLuaSocket skips unless lua5.1 and Debian's lua-socket are there.
func needRealLuaSocket(t *testing.T) string {
	t.Helper()
	lua := testpeer.Path(t, "lua5.1")
	testpeer.NeedFile(t, debianSocket, "lua-socket")
	return lua
}

// runScript runs a Lua file as the sockplay command does and returns
// what it printed (an uncaught error included).
func runScript(t *testing.T, file string, args ...string) string {
	t.Helper()
	out := &syncBuffer{}
	h := New(Options{Stdin: strings.NewReader(""), Stdout: out, Stderr: out})
	defer h.Close()
	h.SetArgs("sockplay", file, args)
	h.SetScriptPath(file)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := h.RunFile(ctx, file); err != nil {
		fmt.Fprintf(out, "error: %s\n", errorMessage(err))
	}
	h.Wait(ctx)
	if ctx.Err() != nil {
		t.Fatalf("%s: still running after 30 s; output:\n%s", file, out)
	}
	return out.String()
}

// runLua51 runs a Lua file with lua5.1 and returns what it printed.
func runLua51(t *testing.T, lua, file string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, lua, append([]string{file}, args...)...)
	out, err := cmd.CombinedOutput()
	if ctx.Err() != nil {
		t.Fatalf("lua5.1 %s: still running after 30 s", file)
	}
	if err != nil {
		return string(out) + fmt.Sprintf("error: %v\n", err)
	}
	return string(out)
}

// The same scripts print the same lines under lua5.1 with LuaSocket and
// under sockplay: every method's results, their number, the error words.
func TestLuaSocketSameAsLua51(t *testing.T) {
	lua := needRealLuaSocket(t)
	dir := filepath.Join("testdata", "luasocket")
	for _, name := range []string{"tcp", "udp", "select", "helpers"} {
		t.Run(name, func(t *testing.T) {
			base := takeBaseline()
			file := filepath.Join(dir, name+".lua")
			want := runLua51(t, lua, file, dir)
			got := runScript(t, file, dir)
			if got != want {
				t.Errorf("sockplay and lua5.1 differ:\n%s", lineDiff(want, got))
			}
			if strings.Count(got, "\n") < 10 {
				t.Errorf("too little output to compare:\n%s", got)
			}
			base.check(t)
		})
	}
}

// lineDiff shows the lines where want and got differ.
func lineDiff(want, got string) string {
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	var b strings.Builder
	for i := 0; i < max(len(w), len(g)); i++ {
		var wl, gl string
		if i < len(w) {
			wl = w[i]
		}
		if i < len(g) {
			gl = g[i]
		}
		if wl != gl {
			fmt.Fprintf(&b, "line %d\n  lua5.1:   %s\n  sockplay: %s\n", i+1, wl, gl)
		}
	}
	return b.String()
}

// luaBytes writes s as a Lua string literal of decimal escapes, which
// both interpreters read the same way.
func luaBytes(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for i := 0; i < len(s); i++ {
		fmt.Fprintf(&b, "\\%d", s[i])
	}
	b.WriteByte('"')
	return b.String()
}

// randomText is text made of the bytes the MIME filters treat specially.
func randomText(r *rand.Rand, n int) string {
	const alphabet = "\r\n\r\n \t=.abcXYZ019+/\x00\xe9\xff-_"
	b := make([]byte, n)
	for i := range b {
		b[i] = alphabet[r.IntN(len(alphabet))]
	}
	return string(b)
}

// mime.core's filters give lua5.1's results, byte for byte, on random
// input cut into random chunks (what a filter chain hands them).
func TestMimeSameAsLua51(t *testing.T) {
	lua := needRealLuaSocket(t)
	r := rand.New(rand.NewPCG(1, 2))
	var src strings.Builder
	src.WriteString(`local m = require("mime.core")
local function hex(v)
  if v == nil then return "nil" end
  if type(v) == "number" then return tostring(v) end
  return (v:gsub(".", function(c) return string.format("%02x", c:byte()) end))
end
local function show(...) local o = {} for i = 1, select("#", ...) do o[i] = hex((select(i, ...))) end print(table.concat(o, " ")) end
`)
	for i := 0; i < 150; i++ {
		c, d := luaBytes(randomText(r, r.IntN(12))), luaBytes(randomText(r, r.IntN(12)))
		n, length := r.IntN(10), 2+r.IntN(10)
		fmt.Fprintf(&src, "show(m.b64(%s, %s)) show(m.b64(%s)) show(m.unb64(%s, %s)) show(m.unb64(%s))\n", c, d, c, c, d, c)
		fmt.Fprintf(&src, "show(m.unb64((m.b64(%s))))\n", c)
		fmt.Fprintf(&src, "show(m.qp(%s, %s)) show(m.qp(%s)) show(m.qp(%s, %s, \"|\")) show(m.unqp(%s, %s)) show(m.unqp(%s))\n", c, d, c, c, d, c, d, c)
		fmt.Fprintf(&src, "show(m.wrp(%d, %s, %d)) show(m.wrp(%d, nil, %d)) show(m.qpwrp(%d, %s, %d)) show(m.qpwrp(%d, nil, %d))\n", n, c, length, n, length, n, c, length, n, length)
		fmt.Fprintf(&src, "show(m.eol(%d, %s, \"|\")) show(m.eol(0, %s)) show(m.eol(0, nil)) show(m.dot(%d, %s)) show(m.dot(%d, nil))\n", []int{0, 10, 13}[r.IntN(3)], c, c, r.IntN(3), c, r.IntN(3))
	}
	file := filepath.Join(t.TempDir(), "mime.lua")
	if err := os.WriteFile(file, []byte(src.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	want := runLua51(t, lua, file)
	got := runScript(t, file)
	if got != want {
		t.Errorf("mime.core differs from lua5.1's:\n%s", lineDiff(want, got))
	}
	if strings.Count(got, "\n") < 150*19 {
		t.Errorf("only %d lines of output", strings.Count(got, "\n"))
	}
}

// mime.b64 and unb64 agree with the base64 command on random bytes.
func TestMimeAgainstBase64Command(t *testing.T) {
	b64 := testpeer.Path(t, "base64")
	r := rand.New(rand.NewPCG(3, 4))
	data := make([]byte, 3000)
	for i := range data {
		data[i] = byte(r.IntN(256))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, b64, "-w", "0")
	cmd.Stdin = strings.NewReader(string(data))
	want, err := cmd.Output()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "data"), data, 0o644)
	script := filepath.Join(dir, "b64.lua")
	os.WriteFile(script, []byte(`
local mime = require("mime.core")
local f = assert(io.open(arg[1], "rb"))
local data = f:read("*a")
f:close()
-- Encode in uneven chunks, as a filter chain would.
local out, rest, i = {}, "", 1
while i <= #data do
  local chunk = data:sub(i, i + 100)
  i = i + 101
  local a
  a, rest = mime.b64(rest, chunk)
  out[#out + 1] = a
end
out[#out + 1] = mime.b64(rest)
local encoded = table.concat(out)
io.write(encoded, "\n")
io.write(mime.unb64(encoded) == data and "round trip ok" or "round trip FAILED", "\n")
`), 0o644)
	got := runScript(t, script, filepath.Join(dir, "data"))
	if wantOut := string(want) + "\nround trip ok\n"; got != wantOut {
		t.Errorf("mime.b64 differs from base64 -w0:\n got %.120q...\nwant %.120q...", got, wantOut)
	}
	if base64.StdEncoding.EncodeToString(data) != string(want) {
		t.Fatal("the base64 command and Go disagree")
	}
}

// pythonServer starts a small HTTP server that answers GET with a body and
// echoes POST bodies, and returns its address.
func pythonServer(t *testing.T) string {
	t.Helper()
	py := testpeer.Path(t, "python3")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	cmd := exec.CommandContext(ctx, py, "-c", `
import http.server, sys
class H(http.server.BaseHTTPRequestHandler):
    def reply(self, code, body):
        self.send_response(code)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def do_GET(self):
        if self.path == "/hello":
            self.reply(200, b"hello from python\n")
        else:
            self.reply(404, b"no such page\n")
    def do_POST(self):
        n = int(self.headers.get("Content-Length", "0"))
        body = self.rfile.read(n)
        self.reply(201, b"got " + str(n).encode() + b" bytes: " + body)
    def log_message(self, *a):
        pass
s = http.server.HTTPServer(("127.0.0.1", 0), H)
print(s.server_address[1], flush=True)
s.serve_forever()
`)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cancel()
		cmd.Wait()
	})
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		t.Fatalf("python3 server did not start: %v", err)
	}
	return "127.0.0.1:" + strings.TrimSpace(line)
}

// LuaSocket's own socket.http (Debian's) fetches over sockplay's sockets:
// a GET, a 404, a POST whose body an ltn12 source gives, a refused port.
func TestSocketHTTPWithPython(t *testing.T) {
	testpeer.NeedFile(t, "/usr/share/lua/5.1/socket/http.lua", "lua-socket")
	addr := pythonServer(t)
	base := takeBaseline()
	script := filepath.Join(t.TempDir(), "http.lua")
	os.WriteFile(script, []byte(`
local http = require("socket.http")
local ltn12 = require("ltn12")
local base = "http://" .. arg[1]
local body, code, headers, status = http.request(base .. "/hello")
print("GET", code, status, headers["content-length"], body)
local t = {}
local ok, code2 = http.request{url = base .. "/missing", sink = ltn12.sink.table(t)}
print("404", ok, code2, table.concat(t))
local payload = string.rep("0123456789", 500)
local r = {}
local ok3, code3 = http.request{
  url = base .. "/echo", method = "POST",
  headers = {["content-length"] = tostring(#payload), ["content-type"] = "text/plain"},
  source = ltn12.source.string(payload),
  sink = ltn12.sink.table(r),
}
local answer = table.concat(r)
print("POST", ok3, code3, #answer, answer:sub(1, 20), answer == "got 5000 bytes: " .. payload)
print("refused", http.request("http://127.0.0.1:1/"))
`), 0o644)
	got := runScript(t, script, addr)
	want := "GET\t200\tHTTP/1.0 200 OK\t18\thello from python\n\n" +
		"404\t1\t404\tno such page\n\n" +
		"POST\t1\t201\t5016\tgot 5000 bytes: 0123\ttrue\n" +
		"refused\tnil\tconnection refused\n"
	if got != want {
		t.Errorf("socket.http over sockplay:\n got %q\nwant %q", got, want)
	}
	base.check(t)
}

// smtpSink is an SMTP server that takes one message and keeps it.
type smtpSink struct {
	addr    string
	session chan string // the commands and the message, in order
}

func startSMTPSink(t *testing.T) *smtpSink {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &smtpSink{addr: l.Addr().String(), session: make(chan string, 1)}
	t.Cleanup(func() { l.Close() })
	go func() {
		c, err := l.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(20 * time.Second))
		r := bufio.NewReader(c)
		var log strings.Builder
		say := func(line string) { fmt.Fprintf(c, "%s\r\n", line) }
		say("220 sink.test ESMTP ready")
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				break
			}
			cmd := strings.TrimRight(line, "\r\n")
			log.WriteString(cmd + "\n")
			switch verb := strings.ToUpper(strings.SplitN(cmd, " ", 2)[0]); verb {
			case "EHLO":
				say("250-sink.test")
				say("250 8BITMIME")
			case "MAIL", "RCPT":
				say("250 ok")
			case "DATA":
				say("354 end with <CRLF>.<CRLF>")
				for {
					dl, err := r.ReadString('\n')
					if err != nil {
						break
					}
					log.WriteString("| " + strings.TrimRight(dl, "\r\n") + "\n")
					if dl == ".\r\n" {
						break
					}
				}
				say("250 queued")
			case "QUIT":
				say("221 bye")
				s.session <- log.String()
				return
			default:
				say("500 what")
			}
		}
		s.session <- log.String()
	}()
	return s
}

// LuaSocket's own socket.smtp (Debian's) sends a message, a base64
// attachment made by mime among its parts, to a sink that speaks SMTP.
func TestSocketSMTPWithSink(t *testing.T) {
	testpeer.NeedFile(t, "/usr/share/lua/5.1/socket/smtp.lua", "lua-socket")
	sink := startSMTPSink(t)
	host, port, _ := net.SplitHostPort(sink.addr)
	base := takeBaseline()
	script := filepath.Join(t.TempDir(), "smtp.lua")
	os.WriteFile(script, []byte(`
local smtp = require("socket.smtp")
local mime = require("mime")
local ltn12 = require("ltn12")
local msg = smtp.message{
  headers = {from = "<alice@example.test>", to = "<bob@example.test>", subject = "greetings"},
  body = {
    preamble = "a two-part message",
    [1] = {body = "Hello Bob.\r\n.a line that starts with a dot\r\n"},
    [2] = {
      headers = {["content-type"] = 'application/octet-stream; name="data.bin"',
                 ["content-transfer-encoding"] = "BASE64"},
      body = ltn12.source.chain(ltn12.source.string("binary\0data\255"), ltn12.filter.chain(mime.encode("base64"), mime.wrap())),
    },
  },
}
local ok, err = smtp.send{from = "<alice@example.test>", rcpt = {"<bob@example.test>"}, source = msg, server = arg[1], port = tonumber(arg[2])}
print("sent", ok, err)
`), 0o644)
	got := runScript(t, script, host, port)
	if got != "sent\t1\tnil\n" {
		t.Errorf("smtp.send: %q", got)
	}
	var session string
	select {
	case session = <-sink.session:
	case <-time.After(20 * time.Second):
		t.Fatal("the sink saw no session")
	}
	for _, want := range []string{
		"EHLO ", "MAIL FROM:<alice@example.test>", "RCPT TO:<bob@example.test>", "DATA",
		"| Subject: greetings", "| Hello Bob.", "| ..a line that starts with a dot",
		"| " + base64.StdEncoding.EncodeToString([]byte("binary\x00data\xff")), "| .", "QUIT",
	} {
		if !strings.Contains(session, want) {
			t.Errorf("the session lacks %q:\n%s", want, session)
		}
	}
	base.check(t)
}

// Debian's own socket.lua runs on sockplay's socket.core when a script
// asks for it instead of sockplay's built-in socket module.
func TestDebianSocketLuaOnSockplayCore(t *testing.T) {
	testpeer.NeedFile(t, debianSocket, "lua-socket")
	script := filepath.Join(t.TempDir(), "debian.lua")
	os.WriteFile(script, []byte(`
local socket = dofile("`+debianSocket+`")
print(socket == require("socket.core"), type(socket.bind), type(socket.sink))
local s = assert(socket.bind("127.0.0.1", 0))
local _, port = s:getsockname()
local c = assert(socket.connect4("127.0.0.1", port))
local a = assert(s:accept())
socket.sink("close-when-done", c)("via Debian's sink\n")
print(a:receive())
print(socket.protect(function() socket.try(nil, "caught") end)())
a:close(); c:close(); s:close()
`), 0o644)
	want := "true\tfunction\tfunction\nvia Debian's sink\tnil\tnil\nnil\tcaught\n"
	if got := runScript(t, script); got != want {
		t.Errorf("Debian's socket.lua on sockplay:\n got %q\nwant %q", got, want)
	}
}
