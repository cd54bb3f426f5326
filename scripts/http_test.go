package scripts_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"sockplay/internal/scripttest"
	"sockplay/internal/testpeer"
)

// Tests of http_server.lua and http_client.lua with real peers: curl
// against the server, the client against Python's http.server and a small
// chunked Python server, and raw TCP where a request must be malformed on
// purpose.

// httpTimeout bounds every single request; the machine may be busy.
const httpTimeout = 10 * time.Second

// httpBinaryFiles are generated into the web root rather than committed.
var httpBinaryFiles = map[string][]byte{
	"image.png":   append([]byte("\x89PNG\r\n\x1a\n"), bytes.Repeat([]byte{0, 1, 2, 0xff}, 64)...),
	"photo.jpg":   append([]byte("\xff\xd8\xff\xe0\x00\x10JFIF\x00"), bytes.Repeat([]byte{0, 0x80}, 50)...),
	"photo.jpeg":  []byte("\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01"),
	"anim.gif":    []byte("GIF89a\x01\x00\x01\x00\x00\x00\x00;"),
	"pic.webp":    []byte("RIFF\x1a\x00\x00\x00WEBPVP8 "),
	"favicon.ico": []byte("\x00\x00\x01\x00\x01\x00\x10\x10"),
	"doc.pdf":     []byte("%PDF-1.4\n%\xe2\xe3\xcf\xd3\n"),
	"mod.wasm":    []byte("\x00asm\x01\x00\x00\x00"),
	"song.mp3":    []byte("ID3\x03\x00\x00\x00\x00\x00\x00\xff\xfb"),
	"clip.mp4":    []byte("\x00\x00\x00\x18ftypmp42"),
	"font.woff2":  []byte("wOF2\x00\x01\x00\x00"),
	"bundle.zip":  []byte("PK\x03\x04\x14\x00\x00\x00"),
	"blob.xyz":    []byte("\x00\x01unknown extension"),
}

// httpWebRoot is a fresh copy of testdata/www plus the binary files, so that
// tests may add and change files.
func httpWebRoot(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "www")
	if err := os.CopyFS(dir, os.DirFS(filepath.Join(scripttest.Root(), "scripts", "testdata", "www"))); err != nil {
		t.Fatal(err)
	}
	for name, data := range httpBinaryFiles {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func startHTTPServer(t *testing.T, root string, args ...string) *scripttest.Server {
	t.Helper()
	return scripttest.Start(t, append([]string{"scripts/http_server.lua", "--root", root, "--port", "0"}, args...)...)
}

// httpCurlResult is one httpCurl run.
type httpCurlResult struct {
	Stdout, Stderr string
	Err            error
}

// httpCurl runs httpCurl -sS --max-time 10 with args.
func httpCurl(t *testing.T, args ...string) httpCurlResult {
	t.Helper()
	bin := testpeer.Path(t, "curl")
	ctx, cancel := context.WithTimeout(context.Background(), httpTimeout+5*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, append([]string{"-sS", "--max-time", "10"}, args...)...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	return httpCurlResult{out.String(), errb.String(), err}
}

// httpFetch fetches url and returns the status code, the response head
// and the body.
func httpFetch(t *testing.T, url string, args ...string) (int, string, string) {
	t.Helper()
	headFile := filepath.Join(t.TempDir(), "head")
	r := httpCurl(t, append([]string{"-D", headFile, url}, args...)...)
	if r.Err != nil {
		t.Fatalf("httpCurl %s %s: %v\n%s", strings.Join(args, " "), url, r.Err, r.Stderr)
	}
	head, err := os.ReadFile(headFile)
	if err != nil {
		t.Fatal(err)
	}
	// With several responses (a 100 Continue first) the last one counts.
	heads := strings.Split(strings.TrimRight(string(head), "\r\n"), "\r\n\r\n")
	last := heads[len(heads)-1]
	var code int
	fmt.Sscanf(last, "HTTP/1.1 %d", &code)
	return code, last + "\r\n\r\n", r.Stdout
}

// headerValue returns the value of a headerValue in a response head.
func headerValue(head, name string) string {
	for _, line := range strings.Split(head, "\r\n") {
		if n, v, ok := strings.Cut(line, ":"); ok && strings.EqualFold(n, name) {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// httpRaw writes request on a new connection and returns everything
// the server sends until it closes (or the deadline).
func httpRaw(t *testing.T, addr, request string) string {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, httpTimeout)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(httpTimeout))
	if _, err := io.WriteString(c, request); err != nil {
		t.Fatal(err)
	}
	data, err := io.ReadAll(c)
	if err != nil {
		t.Fatalf("reading the answer to %q: %v (got %q)", request, err, data)
	}
	return string(data)
}

// httpReadResponse reads one response with a Content-Length body from r.
func httpReadResponse(t *testing.T, r *bufio.Reader) (status int, head, body string) {
	t.Helper()
	var b strings.Builder
	length := 0
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			t.Fatalf("reading a response head: %v (so far %q)", err, b.String())
		}
		b.WriteString(line)
		if line == "\r\n" {
			break
		}
		if n, v, ok := strings.Cut(line, ":"); ok && strings.EqualFold(n, "Content-Length") {
			length, _ = strconv.Atoi(strings.TrimSpace(v))
		}
	}
	head = b.String()
	fmt.Sscanf(head, "HTTP/1.1 %d", &status)
	buf := make([]byte, length)
	if _, err := io.ReadFull(r, buf); err != nil {
		t.Fatalf("reading a body of %d bytes: %v", length, err)
	}
	return status, head, string(buf)
}

// waitForLogLine polls the server's log for a line matching re.
func waitForLogLine(t *testing.T, srv *scripttest.Server, re *regexp.Regexp) string {
	t.Helper()
	deadline := time.Now().Add(httpTimeout)
	for {
		if m := re.FindString(srv.Output()); m != "" {
			return m
		}
		if time.Now().After(deadline) {
			t.Fatalf("no log line matching %s in:\n%s", re, srv.Output())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestHTTPServerMIMETypes(t *testing.T) {
	root := httpWebRoot(t)
	srv := startHTTPServer(t, root)
	base := "http://" + srv.Addr
	want := map[string]string{
		"index.html":  "text/html; charset=utf-8",
		"style.css":   "text/css; charset=utf-8",
		"app.js":      "text/javascript; charset=utf-8",
		"module.mjs":  "text/javascript; charset=utf-8",
		"data.json":   "application/json; charset=utf-8",
		"notes.txt":   "text/plain; charset=utf-8",
		"feed.xml":    "application/xml; charset=utf-8",
		"logo.svg":    "image/svg+xml; charset=utf-8",
		"image.png":   "image/png",
		"photo.jpg":   "image/jpeg",
		"photo.jpeg":  "image/jpeg",
		"anim.gif":    "image/gif",
		"pic.webp":    "image/webp",
		"favicon.ico": "image/vnd.microsoft.icon",
		"doc.pdf":     "application/pdf",
		"mod.wasm":    "application/wasm",
		"song.mp3":    "audio/mpeg",
		"clip.mp4":    "video/mp4",
		"font.woff2":  "font/woff2",
		"bundle.zip":  "application/zip",
		"blob.xyz":    "application/octet-stream",
	}
	for name, ctype := range want {
		code, head, body := httpFetch(t, base+"/"+name)
		if code != 200 {
			t.Errorf("GET /%s: status %d, want 200", name, code)
			continue
		}
		if got := headerValue(head, "Content-Type"); got != ctype {
			t.Errorf("GET /%s: Content-Type %q, want %q", name, got, ctype)
		}
		file, _ := os.ReadFile(filepath.Join(root, name))
		if body != string(file) {
			t.Errorf("GET /%s: body differs from the file (%d bytes, want %d)", name, len(body), len(file))
		}
		if got := headerValue(head, "Content-Length"); got != strconv.Itoa(len(file)) {
			t.Errorf("GET /%s: Content-Length %q, want %d", name, got, len(file))
		}
	}
}

// HEAD returns exactly the head GET would, Content-Length included.
func TestHTTPServerHeadMatchesGet(t *testing.T) {
	root := httpWebRoot(t)
	big := bytes.Repeat([]byte("0123456789abcdef"), 40000) // 640 KB: sent in pieces, not cached
	os.WriteFile(filepath.Join(root, "big.txt"), big, 0o644)
	srv := startHTTPServer(t, root)
	base := "http://" + srv.Addr
	dropDate := regexp.MustCompile(`(?m)^Date: .*\r\n`)
	for _, path := range []string{"/", "/index.html", "/image.png", "/files/", "/docs", "/missing", "/big.txt"} {
		get := httpCurl(t, "-D", "-", "-o", "/dev/null", base+path)
		head := httpCurl(t, "-I", base+path)
		if get.Err != nil || head.Err != nil {
			t.Fatalf("%s: httpCurl failed: %v %v\n%s%s", path, get.Err, head.Err, get.Stderr, head.Stderr)
		}
		g, h := dropDate.ReplaceAllString(get.Stdout, ""), dropDate.ReplaceAllString(head.Stdout, "")
		if g != h {
			t.Errorf("%s: HEAD differs from GET\nGET:\n%s\nHEAD:\n%s", path, g, h)
		}
		if !strings.Contains(h, "Content-Length: ") {
			t.Errorf("%s: HEAD without Content-Length:\n%s", path, h)
		}
	}
	code, _, body := httpFetch(t, base+"/big.txt")
	if code != 200 || body != string(big) {
		t.Errorf("GET /big.txt: status %d, %d bytes, want 200 and %d bytes", code, len(body), len(big))
	}
}

func TestHTTPServerStatusCodes(t *testing.T) {
	root := httpWebRoot(t)
	srv := startHTTPServer(t, root)
	base := "http://" + srv.Addr

	t.Run("404", func(t *testing.T) {
		code, _, _ := httpFetch(t, base+"/no/such/file.html")
		if code != 404 {
			t.Errorf("status %d, want 404", code)
		}
	})
	t.Run("405 with Allow", func(t *testing.T) {
		for _, m := range []string{"DELETE", "POST", "PUT", "PATCH"} {
			code, head, _ := httpFetch(t, base+"/index.html", "-X", m)
			if code != 405 || headerValue(head, "Allow") != "GET, HEAD, OPTIONS" {
				t.Errorf("%s: status %d, Allow %q; want 405 and GET, HEAD, OPTIONS", m, code, headerValue(head, "Allow"))
			}
		}
	})
	t.Run("501 unknown method", func(t *testing.T) {
		code, _, _ := httpFetch(t, base+"/", "-X", "BREW")
		if code != 501 {
			t.Errorf("status %d, want 501", code)
		}
	})
	t.Run("OPTIONS", func(t *testing.T) {
		code, head, _ := httpFetch(t, base+"/index.html", "-X", "OPTIONS")
		if code != 204 || headerValue(head, "Allow") != "GET, HEAD, OPTIONS" {
			t.Errorf("status %d, Allow %q", code, headerValue(head, "Allow"))
		}
	})
	t.Run("301 directory without slash", func(t *testing.T) {
		code, head, _ := httpFetch(t, base+"/docs?x=1")
		if code != 301 || headerValue(head, "Location") != "/docs/?x=1" {
			t.Errorf("status %d, Location %q; want 301 and /docs/?x=1", code, headerValue(head, "Location"))
		}
		code, _, body := httpFetch(t, base+"/docs", "-L")
		if code != 200 || !strings.Contains(body, "the docs index") {
			t.Errorf("following the redirect: status %d, body %q", code, body)
		}
	})
	t.Run("directory listing", func(t *testing.T) {
		code, head, body := httpFetch(t, base+"/files/")
		if code != 200 || !strings.HasPrefix(headerValue(head, "Content-Type"), "text/html") {
			t.Fatalf("status %d, type %q", code, headerValue(head, "Content-Type"))
		}
		for _, want := range []string{`<a href="a.txt">a.txt</a>`, `<a href="b%20c.txt">b c.txt</a>`, `<a href="../">`} {
			if !strings.Contains(body, want) {
				t.Errorf("listing lacks %s:\n%s", want, body)
			}
		}
	})
	t.Run("304 If-None-Match", func(t *testing.T) {
		code, head, _ := httpFetch(t, base+"/style.css")
		etag := headerValue(head, "ETag")
		if code != 200 || etag == "" {
			t.Fatalf("status %d, ETag %q", code, etag)
		}
		code, head, body := httpFetch(t, base+"/style.css", "-H", "If-None-Match: "+etag)
		if code != 304 || body != "" || headerValue(head, "ETag") != etag {
			t.Errorf("second request: status %d, ETag %q, body %q; want 304, the same ETag, no body", code, headerValue(head, "ETag"), body)
		}
		code, _, _ = httpFetch(t, base+"/style.css", "-H", `If-None-Match: "other", W/`+etag)
		if code != 304 {
			t.Errorf("ETag in a list, weak: status %d, want 304", code)
		}
		code, _, _ = httpFetch(t, base+"/style.css", "-H", `If-None-Match: "nope"`)
		if code != 200 {
			t.Errorf("another ETag: status %d, want 200", code)
		}
		// The file changes: the old ETag no longer matches (after the
		// server's one-second cache).
		time.Sleep(1100 * time.Millisecond)
		os.WriteFile(filepath.Join(root, "style.css"), []byte("p { color: red }\n"), 0o644)
		code, head, body = httpFetch(t, base+"/style.css", "-H", "If-None-Match: "+etag)
		if code != 200 || body != "p { color: red }\n" || headerValue(head, "ETag") == etag {
			t.Errorf("after a change: status %d, ETag %q, body %q", code, headerValue(head, "ETag"), body)
		}
	})
	t.Run("304 If-Modified-Since", func(t *testing.T) {
		code, head, _ := httpFetch(t, base+"/notes.txt")
		lm := headerValue(head, "Last-Modified")
		if code != 200 || !strings.HasSuffix(lm, " GMT") {
			t.Fatalf("status %d, Last-Modified %q", code, lm)
		}
		code, _, _ = httpFetch(t, base+"/notes.txt", "-H", "If-Modified-Since: "+lm)
		if code != 304 {
			t.Errorf("If-Modified-Since: Last-Modified: status %d, want 304", code)
		}
		code, _, _ = httpFetch(t, base+"/notes.txt", "-H", "If-Modified-Since: Sat, 01 Jan 2000 00:00:00 GMT")
		if code != 200 {
			t.Errorf("If-Modified-Since in 2000: status %d, want 200", code)
		}
	})
	t.Run("raw errors", func(t *testing.T) {
		cases := []struct{ request, status string }{
			{"GARBAGE\r\n\r\n", "400"},
			{"GET /  HTTP/1.1\r\nHost: x\r\n\r\n", "400"},
			{"GET / HTTP/1.1\r\n\r\n", "400"}, // no Host
			{"GET / HTTP/1.1\r\nHost : x\r\n\r\n", "400"},
			{"GET / HTTP/1.1\r\nHost: x\r\n folded\r\n\r\n", "400"},
			{"GET / HTTP/2.0\r\nHost: x\r\n\r\n", "505"},
			{"GET index.html HTTP/1.1\r\nHost: x\r\n\r\n", "400"},
			{"POST /cgi HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n", "400"},
			{"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n", "400"},
			{"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n", "501"},
			{"GET /" + strings.Repeat("a", 9000) + " HTTP/1.1\r\nHost: x\r\n\r\n", "431"},
			{"GET / HTTP/1.1\r\nHost: x\r\n" + strings.Repeat("X-Filler: 0123456789abcdef\r\n", 400) + "\r\n", "431"},
			{"GET /%zz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", "400"},
		}
		for _, c := range cases {
			got := httpRaw(t, srv.Addr, c.request)
			if !strings.HasPrefix(got, "HTTP/1.1 "+c.status+" ") {
				short := c.request
				if len(short) > 80 {
					short = short[:80] + "..."
				}
				t.Errorf("%q: got %q, want status %s", short, statusLineOf(got), c.status)
			}
		}
		// and the server still serves
		if code, _, _ := httpFetch(t, base+"/notes.txt"); code != 200 {
			t.Errorf("after the malformed requests: status %d", code)
		}
	})
}

func statusLineOf(s string) string {
	line, _, _ := strings.Cut(s, "\r\n")
	return line
}

func TestHTTPServerLimits(t *testing.T) {
	root := httpWebRoot(t)
	srv := startHTTPServer(t, root, "--timeout", "1", "--max-body", "100", "--allow-put")
	t.Run("413", func(t *testing.T) {
		code, _, _ := httpFetch(t, "http://"+srv.Addr+"/up.txt", "-X", "PUT", "--data-binary", strings.Repeat("x", 101))
		if code != 413 {
			t.Errorf("status %d, want 413", code)
		}
		// chunked: the size is only known as it arrives
		got := httpRaw(t, srv.Addr, "PUT /up.txt HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n50\r\n"+strings.Repeat("x", 80)+"\r\n50\r\n"+strings.Repeat("x", 80)+"\r\n0\r\n\r\n")
		if !strings.HasPrefix(got, "HTTP/1.1 413 ") {
			t.Errorf("chunked: %q, want 413", statusLineOf(got))
		}
	})
	t.Run("408", func(t *testing.T) {
		start := time.Now()
		got := httpRaw(t, srv.Addr, "GET / HTTP/1.1\r\nHost: x\r\n") // and then nothing
		if !strings.HasPrefix(got, "HTTP/1.1 408 ") || !strings.Contains(got, "Connection: close") {
			t.Errorf("got %q, want 408 and close", got)
		}
		if d := time.Since(start); d < 900*time.Millisecond {
			t.Errorf("408 after %s, before the 1 s timeout", d)
		}
	})
	t.Run("idle keep-alive closes quietly", func(t *testing.T) {
		c, err := net.DialTimeout("tcp", srv.Addr, httpTimeout)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(httpTimeout))
		io.WriteString(c, "GET /notes.txt HTTP/1.1\r\nHost: x\r\n\r\n")
		r := bufio.NewReader(c)
		if status, _, _ := httpReadResponse(t, r); status != 200 {
			t.Fatalf("status %d", status)
		}
		rest, err := io.ReadAll(r) // the server closes after its timeout, with no 408
		if err != nil || len(rest) != 0 {
			t.Errorf("after the idle timeout: %q, %v; want a quiet close", rest, err)
		}
	})
	t.Run("100-continue", func(t *testing.T) {
		code, _, _ := httpFetch(t, "http://"+srv.Addr+"/small.txt", "-X", "PUT", "-H", "Expect: 100-continue", "--data-binary", "hello")
		if code != 201 {
			t.Errorf("status %d, want 201", code)
		}
	})
}

func TestHTTPServerMaxConns(t *testing.T) {
	srv := startHTTPServer(t, httpWebRoot(t), "--max-conns", "1")
	// One connection served and kept open takes the only place.
	c, err := net.DialTimeout("tcp", srv.Addr, httpTimeout)
	if err != nil {
		t.Fatal(err)
	}
	c.SetDeadline(time.Now().Add(3 * httpTimeout))
	io.WriteString(c, "GET /notes.txt HTTP/1.1\r\nHost: x\r\n\r\n")
	if status, _, _ := httpReadResponse(t, bufio.NewReader(c)); status != 200 {
		t.Fatalf("first connection: status %d", status)
	}
	code, head, _ := httpFetch(t, "http://"+srv.Addr+"/notes.txt")
	if code != 503 || headerValue(head, "Retry-After") == "" {
		t.Errorf("second connection: status %d, Retry-After %q; want 503 with Retry-After", code, headerValue(head, "Retry-After"))
	}
	c.Close()
	deadline := time.Now().Add(httpTimeout)
	for {
		code, _, _ = httpFetch(t, "http://"+srv.Addr+"/notes.txt")
		if code == 200 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after the first connection closed: still %d", code)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestHTTPServerKeepAliveAndPipelining(t *testing.T) {
	srv := startHTTPServer(t, httpWebRoot(t))
	base := "http://" + srv.Addr
	t.Run("httpCurl reuses the connection", func(t *testing.T) {
		r := httpCurl(t, "-v", "-o", "/dev/null", "-o", "/dev/null", "-o", "/dev/null", base+"/index.html", base+"/style.css", base+"/notes.txt")
		if r.Err != nil {
			t.Fatalf("curl: %v\n%s", r.Err, r.Stderr)
		}
		if n := strings.Count(r.Stderr, "Re-using existing connection"); n != 2 {
			t.Errorf("%d reuses, want 2:\n%s", n, r.Stderr)
		}
		if n := strings.Count(r.Stderr, "Connected to"); n != 1 {
			t.Errorf("%d connections, want 1", n)
		}
		// The log shows one client port for the three requests.
		ports := map[string]bool{}
		for _, path := range []string{"/index.html", "/style.css", "/notes.txt"} {
			line := waitForLogLine(t, srv, regexp.MustCompile(`127\.0\.0\.1:\d+ "GET `+regexp.QuoteMeta(path)+` HTTP/1\.1" 200 \d+ [\d.]+ms`))
			ports[strings.Fields(line)[0]] = true
		}
		if len(ports) != 1 {
			t.Errorf("requests came from %d client ports, want 1: %v", len(ports), ports)
		}
	})
	t.Run("pipelined requests", func(t *testing.T) {
		c, err := net.DialTimeout("tcp", srv.Addr, httpTimeout)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(httpTimeout))
		// Three requests in one write; the answers come in order.
		io.WriteString(c, "GET /notes.txt HTTP/1.1\r\nHost: x\r\n\r\n"+
			"HEAD /style.css HTTP/1.1\r\nHost: x\r\n\r\n"+
			"GET /data.json HTTP/1.1\r\nHost: x\r\n\r\n")
		r := bufio.NewReader(c)
		_, _, body1 := httpReadResponse(t, r)
		// HEAD: a Content-Length, but no body follows
		line, _ := r.ReadString('\n')
		if line != "HTTP/1.1 200 OK\r\n" {
			t.Fatalf("second answer starts %q", line)
		}
		for line != "\r\n" {
			line, err = r.ReadString('\n')
			if err != nil {
				t.Fatal(err)
			}
		}
		_, _, body3 := httpReadResponse(t, r)
		if body1 != "plain text, one line\n" || !strings.Contains(body3, `"sockplay"`) {
			t.Errorf("bodies %q and %q", body1, body3)
		}
	})
	t.Run("HTTP/1.0 closes", func(t *testing.T) {
		got := httpRaw(t, srv.Addr, "GET /notes.txt HTTP/1.0\r\n\r\n")
		if !strings.HasPrefix(got, "HTTP/1.1 200 OK") || !strings.Contains(got, "Connection: close") || !strings.HasSuffix(got, "plain text, one line\n") {
			t.Errorf("got %q", got)
		}
	})
	t.Run("HTTP/1.0 keep-alive", func(t *testing.T) {
		c, err := net.DialTimeout("tcp", srv.Addr, httpTimeout)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(httpTimeout))
		r := bufio.NewReader(c)
		for i := 0; i < 2; i++ {
			io.WriteString(c, "GET /notes.txt HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
			status, head, _ := httpReadResponse(t, r)
			if status != 200 || headerValue(head, "Connection") != "keep-alive" {
				t.Fatalf("request %d: status %d, Connection %q", i+1, status, headerValue(head, "Connection"))
			}
		}
	})
	t.Run("bare LF, as typed into nc", func(t *testing.T) {
		got := httpRaw(t, srv.Addr, "GET /notes.txt HTTP/1.1\nHost: x\nConnection: close\n\n")
		if !strings.HasPrefix(got, "HTTP/1.1 200 OK") || !strings.HasSuffix(got, "plain text, one line\n") {
			t.Errorf("got %q", got)
		}
	})
	t.Run("nc", func(t *testing.T) {
		nc := testpeer.Path(t, "nc")
		ctx, cancel := context.WithTimeout(context.Background(), httpTimeout)
		defer cancel()
		cmd := exec.CommandContext(ctx, nc, "-N", srv.Host, srv.Port)
		cmd.Stdin = strings.NewReader("GET / HTTP/1.0\r\n\r\n")
		out, err := cmd.Output()
		if err != nil || !strings.HasPrefix(string(out), "HTTP/1.1 200 OK\r\n") || !strings.Contains(string(out), "Hello from sockplay") {
			t.Errorf("nc: %v\n%s", err, out)
		}
	})
}

// No way out of the root: every attempt answers 403 or 404, never a file
// from outside.
func TestHTTPServerTraversal(t *testing.T) {
	top := t.TempDir()
	root := filepath.Join(top, "www")
	os.MkdirAll(filepath.Join(root, "sub"), 0o755)
	os.WriteFile(filepath.Join(root, "ok.txt"), []byte("inside\n"), 0o644)
	os.MkdirAll(filepath.Join(top, "outside"), 0o755)
	const secret = "TOP-SECRET-outside-the-root"
	os.WriteFile(filepath.Join(top, "outside", "secret.txt"), []byte(secret+"\n"), 0o644)
	os.Symlink(filepath.Join(top, "outside"), filepath.Join(root, "linkdir"))
	os.Symlink("../outside/secret.txt", filepath.Join(root, "linkfile"))
	os.Symlink("/etc", filepath.Join(root, "etc"))
	os.Symlink("ok.txt", filepath.Join(root, "inside-link")) // a symlink that stays inside is fine
	os.WriteFile(filepath.Join(root, "sub", "index.html"), nil, 0o644)
	os.Remove(filepath.Join(root, "sub", "index.html"))
	os.Symlink("../../outside/secret.txt", filepath.Join(root, "sub", "index.html"))
	srv := startHTTPServer(t, root)
	base := "http://" + srv.Addr

	paths := []string{
		"/../outside/secret.txt",
		"/../../../../../../etc/passwd",
		"/%2e%2e/outside/secret.txt",
		"/%2E%2E/%2e%2e/%2e%2e/etc/passwd",
		"/.%2e/outside/secret.txt",
		"/..%2foutside%2fsecret.txt",
		"/%2e%2e%2foutside%2fsecret.txt",
		"/..%5coutside%5csecret.txt",
		"/..\\outside\\secret.txt",
		"/sub/../../outside/secret.txt",
		"/./../outside/secret.txt",
		"//etc/passwd",
		"/etc/passwd",
		"/linkdir/secret.txt",
		"/linkfile",
		"/sub/index.html",
		"/%252e%252e/outside/secret.txt",
		"/%00/../outside/secret.txt",
		"/ok.txt/../../outside/secret.txt",
	}
	for _, p := range paths {
		code, _, body := httpFetch(t, base+p, "--path-as-is")
		if code != 403 && code != 404 && code != 400 {
			t.Errorf("GET %s: status %d, want 403 or 404", p, code)
		}
		if strings.Contains(body, secret) || strings.Contains(body, "root:x:0:0") {
			t.Errorf("GET %s: served a file from outside the root:\n%s", p, body)
		}
	}
	// /sub/ lists the directory: its index.html leads outside, so it is not served.
	if _, _, body := httpFetch(t, base+"/sub/"); strings.Contains(body, secret) {
		t.Errorf("GET /sub/ served the outside file:\n%s", body)
	}
	// The request target sent as is, without curl's help.
	for _, target := range []string{"../outside/secret.txt", "http://x/../outside/secret.txt", "/../outside/secret.txt", "http://x/%2e%2e/outside/secret.txt"} {
		got := httpRaw(t, srv.Addr, "GET "+target+" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
		if strings.Contains(got, secret) || !regexp.MustCompile(`^HTTP/1\.1 40[034] `).MatchString(got) {
			t.Errorf("GET %s: %q", target, statusLineOf(got))
		}
	}
	if code, _, body := httpFetch(t, base+"/inside-link"); code != 200 || body != "inside\n" {
		t.Errorf("a symlink inside the root: status %d, body %q", code, body)
	}
}

func TestHTTPServerPut(t *testing.T) {
	root := httpWebRoot(t)
	os.Symlink("/tmp/sockplay-put-escape-test", filepath.Join(root, "escape"))
	srv := startHTTPServer(t, root, "--allow-put")
	base := "http://" + srv.Addr
	code, head, _ := httpFetch(t, base+"/new.txt", "-X", "PUT", "--data-binary", "first\n")
	if code != 201 || headerValue(head, "Location") != "/new.txt" {
		t.Errorf("PUT of a new file: status %d, Location %q; want 201", code, headerValue(head, "Location"))
	}
	if data, _ := os.ReadFile(filepath.Join(root, "new.txt")); string(data) != "first\n" {
		t.Errorf("file holds %q", data)
	}
	code, _, _ = httpFetch(t, base+"/new.txt", "-X", "PUT", "--data-binary", "second\n")
	if code != 204 {
		t.Errorf("PUT replacing a file: status %d, want 204", code)
	}
	if code, _, body := httpFetch(t, base+"/new.txt"); code != 200 || body != "second\n" {
		t.Errorf("GET after PUT: %d %q", code, body)
	}
	for _, p := range []string{"/escape", "/../x.txt", "/files/", "/nodir/x.txt", "/%2e%2e/x.txt"} {
		code, _, _ := httpFetch(t, base+p, "-X", "PUT", "--data-binary", "x", "--path-as-is")
		if code < 400 || code >= 500 {
			t.Errorf("PUT %s: status %d, want a refusal", p, code)
		}
	}
	if _, err := os.Lstat("/tmp/sockplay-put-escape-test"); err == nil {
		os.Remove("/tmp/sockplay-put-escape-test")
		t.Errorf("PUT wrote through a symlink out of the root")
	}
	code, head, _ = httpFetch(t, base+"/", "-X", "OPTIONS")
	if code != 204 || headerValue(head, "Allow") != "GET, HEAD, PUT, OPTIONS" {
		t.Errorf("OPTIONS with --allow-put: %d, Allow %q", code, headerValue(head, "Allow"))
	}
}

// writeCGIProgram writes an executable CGI program.
func writeCGIProgram(t *testing.T, dir, name, script string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, name), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
}

func TestHTTPServerCGIExamples(t *testing.T) {
	srv := startHTTPServer(t, httpWebRoot(t), "--cgi-bin", "scripts/cgi-bin")
	base := "http://" + srv.Addr
	t.Run("echo.sh POST", func(t *testing.T) {
		code, head, body := httpFetch(t, base+"/cgi-bin/echo.sh/extra/path?x=1&y=two",
			"--data-binary", "the request body\nline two", "-H", "X-Test: yes", "-H", "Proxy: http://evil.example/", "-H", "Content-Type: text/plain")
		if code != 200 || !strings.HasPrefix(headerValue(head, "Content-Type"), "text/plain") {
			t.Fatalf("status %d, head:\n%s", code, head)
		}
		for _, want := range []string{
			"GATEWAY_INTERFACE=CGI/1.1\n", "REQUEST_METHOD=POST\n", "QUERY_STRING=x=1&y=two\n",
			"CONTENT_LENGTH=25\n", "CONTENT_TYPE=text/plain\n", "PATH_INFO=/extra/path\n",
			"SCRIPT_NAME=/cgi-bin/echo.sh\n", "SERVER_NAME=127.0.0.1\n", "SERVER_PORT=" + srv.Port + "\n",
			"SERVER_PROTOCOL=HTTP/1.1\n", "SERVER_SOFTWARE=sockplay-http/", "REMOTE_ADDR=127.0.0.1\n",
			"HTTP_X_TEST=yes\n", "HTTP_HOST=" + srv.Addr + "\n",
			"body (25 bytes):\nthe request body\nline two",
		} {
			if !strings.Contains(body, want) {
				t.Errorf("echo.sh output lacks %q:\n%s", want, body)
			}
		}
		if strings.Contains(body, "HTTP_PROXY") || strings.Contains(body, "HTTP_CONTENT_LENGTH") {
			t.Errorf("headers that must not become variables did:\n%s", body)
		}
	})
	t.Run("hello.sh is sent chunked", func(t *testing.T) {
		code, head, body := httpFetch(t, base+"/cgi-bin/hello.sh?name=curl")
		if code != 200 || headerValue(head, "Transfer-Encoding") != "chunked" || headerValue(head, "Content-Length") != "" {
			t.Errorf("status %d, head:\n%s", code, head)
		}
		if !strings.HasPrefix(body, "Hello, curl, from a shell script") {
			t.Errorf("body %q", body)
		}
	})
	t.Run("hello.lua", func(t *testing.T) {
		code, head, body := httpFetch(t, base+"/cgi-bin/hello.lua?a=1&b=2")
		if code != 200 || !strings.HasPrefix(headerValue(head, "Content-Type"), "text/html") || !strings.Contains(body, "query: a = 1, b = 2") {
			t.Errorf("status %d, body %q", code, body)
		}
		code, head, _ = httpFetch(t, base+"/cgi-bin/hello.lua?go=/notes.txt")
		if code != 302 || headerValue(head, "Location") != "/notes.txt" {
			t.Errorf("redirect: status %d, Location %q", code, headerValue(head, "Location"))
		}
		code, _, body = httpFetch(t, base+"/cgi-bin/hello.lua", "-d", "a posted body")
		if code != 200 || !strings.Contains(body, "13 bytes of body") {
			t.Errorf("POST: status %d, body %q", code, body)
		}
	})
	t.Run("HEAD and missing", func(t *testing.T) {
		r := httpCurl(t, "-I", base+"/cgi-bin/hello.sh")
		if r.Err != nil || !strings.HasPrefix(r.Stdout, "HTTP/1.1 200 OK") {
			t.Errorf("HEAD: %v %q", r.Err, r.Stdout)
		}
		if code, _, _ := httpFetch(t, base+"/cgi-bin/nope.sh"); code != 404 {
			t.Errorf("a missing program: %d, want 404", code)
		}
	})
}

func TestHTTPServerCGIFailures(t *testing.T) {
	cgi := t.TempDir()
	pidFile := filepath.Join(t.TempDir(), "slow.pid")
	writeCGIProgram(t, cgi, "fail.sh", "#!/bin/sh\necho 'Content-Type: text/plain'\necho\necho partial\nexit 3\n")
	writeCGIProgram(t, cgi, "bad-header.sh", "#!/bin/sh\necho 'this is not a header'\necho\necho body\n")
	writeCGIProgram(t, cgi, "no-fields.sh", "#!/bin/sh\necho 'X-Only: other'\necho\necho body\n")
	writeCGIProgram(t, cgi, "slow.sh", "#!/bin/sh\necho $$ > "+pidFile+"\nsleep 30 &\necho $! >> "+pidFile+"\nwait\n")
	writeCGIProgram(t, cgi, "status.sh", "#!/bin/sh\nprintf 'Status: 418 I am a teapot\\r\\nContent-Type: text/plain\\r\\nX-Extra: yes\\r\\n\\r\\nshort and stout\\n'\n")
	writeCGIProgram(t, cgi, "local.sh", "#!/bin/sh\necho 'Location: /notes.txt'\necho\n")
	os.WriteFile(filepath.Join(cgi, "plain.sh"), []byte("#!/bin/sh\necho hi\n"), 0o644) // not executable
	srv := startHTTPServer(t, httpWebRoot(t), "--cgi-bin", cgi, "--cgi-timeout", "1")
	base := "http://" + srv.Addr

	for _, c := range []struct {
		path string
		code int
	}{{"/cgi-bin/fail.sh", 500}, {"/cgi-bin/bad-header.sh", 500}, {"/cgi-bin/no-fields.sh", 500}, {"/cgi-bin/plain.sh", 403}} {
		code, _, body := httpFetch(t, base+c.path)
		if code != c.code {
			t.Errorf("%s: status %d, want %d (%q)", c.path, code, c.code, body)
		}
		if strings.Contains(body, "partial") {
			t.Errorf("%s: the failed program's output was sent: %q", c.path, body)
		}
	}
	code, head, body := httpFetch(t, base+"/cgi-bin/status.sh")
	if code != 418 || headerValue(head, "X-Extra") != "yes" || body != "short and stout\n" || !strings.Contains(head, "418 I am a teapot") {
		t.Errorf("Status header: %d %q\n%s", code, body, head)
	}
	code, _, body = httpFetch(t, base+"/cgi-bin/local.sh")
	if code != 200 || body != "plain text, one line\n" {
		t.Errorf("local redirect: %d %q", code, body)
	}

	start := time.Now()
	code, _, _ = httpFetch(t, base+"/cgi-bin/slow.sh")
	if code != 504 {
		t.Errorf("slow program: status %d, want 504", code)
	}
	if d := time.Since(start); d > 8*time.Second {
		t.Errorf("504 after %s; the limit is 1 s", d)
	}
	pids, _ := os.ReadFile(pidFile)
	fields := strings.Fields(string(pids))
	if len(fields) != 2 {
		t.Fatalf("slow.sh wrote %q, want its pid and its child's", pids)
	}
	for _, pid := range fields {
		if st := procStateOf(pid); st != "" {
			t.Errorf("process %s of the timed-out program is still there (state %s)", pid, st)
		}
	}
	if code, _, _ := httpFetch(t, base+"/notes.txt"); code != 200 {
		t.Errorf("the server stopped serving: %d", code)
	}
	if !strings.Contains(srv.Stderr(), "cgi fail.sh: exited with status 3") || !strings.Contains(srv.Stderr(), "cgi slow.sh: killed after 1s") {
		t.Errorf("the server's stderr does not say what went wrong:\n%s", srv.Stderr())
	}
}

// procStateOf is a process's state letter from /proc, "" when it is gone.
func procStateOf(pid string) string {
	data, err := os.ReadFile("/proc/" + pid + "/stat")
	if err != nil {
		return ""
	}
	s := string(data)
	if i := strings.LastIndexByte(s, ')'); i >= 0 && i+2 < len(s) {
		return s[i+2 : i+3]
	}
	return "?"
}

func TestHTTPServerLogAndUsage(t *testing.T) {
	srv := startHTTPServer(t, httpWebRoot(t))
	httpFetch(t, "http://"+srv.Addr+"/notes.txt")
	httpFetch(t, "http://"+srv.Addr+"/missing")
	waitForLogLine(t, srv, regexp.MustCompile(`(?m)^127\.0\.0\.1:\d+ "GET /notes\.txt HTTP/1\.1" 200 21 [\d.]+ms$`))
	waitForLogLine(t, srv, regexp.MustCompile(`(?m)^127\.0\.0\.1:\d+ "GET /missing HTTP/1\.1" 404 \d+ [\d.]+ms$`))

	r := scripttest.Run(t, "", httpTimeout, "scripts/http_server.lua", "--help")
	if r.Code != 0 || !strings.Contains(r.Stdout, "usage: http_server.lua --root DIR") {
		t.Errorf("--help: %d %q", r.Code, r.Stdout)
	}
	r = scripttest.Run(t, "", httpTimeout, "scripts/http_server.lua")
	if r.Code != 2 || !strings.Contains(r.Stderr, "--root DIR is required") {
		t.Errorf("no --root: %d %q", r.Code, r.Stderr)
	}
	r = scripttest.Run(t, "", httpTimeout, "scripts/http_server.lua", "--root", "/no/such/dir")
	if r.Code != 1 || !strings.Contains(r.Stderr, "no such file or directory") {
		t.Errorf("missing root: %d %q", r.Code, r.Stderr)
	}
	r = scripttest.Run(t, "", httpTimeout, "scripts/http_client.lua", "--help")
	if r.Code != 0 || !strings.Contains(r.Stdout, "usage: http_client.lua URL...") {
		t.Errorf("client --help: %d %q", r.Code, r.Stdout)
	}
}

// runHTTPClient runs http_client.lua with args.
func runHTTPClient(t *testing.T, args ...string) scripttest.Result {
	t.Helper()
	return scripttest.Run(t, "", 3*httpTimeout, append([]string{"scripts/http_client.lua"}, args...)...)
}

// startPythonServer runs a Python server and returns its address. Its first line
// is "listening on HOST:PORT" or http.server's "Serving HTTP on ...".
func startPythonServer(t *testing.T, args ...string) string {
	t.Helper()
	py := testpeer.Path(t, "python3")
	cmd := exec.Command(py, append([]string{"-u"}, args...)...)
	cmd.Dir = scripttest.Root()
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = io.Discard
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	lines := make(chan string, 1)
	go func() {
		line, _ := bufio.NewReader(out).ReadString('\n')
		lines <- line
		io.Copy(io.Discard, out)
	}()
	select {
	case line := <-lines:
		if m := regexp.MustCompile(`listening on (\S+)|Serving HTTP on (\S+) port (\d+)`).FindStringSubmatch(line); m != nil {
			if m[1] != "" {
				return m[1]
			}
			return m[2] + ":" + m[3]
		}
		t.Fatalf("python3 %s: first line %q", strings.Join(args, " "), line)
	case <-time.After(httpTimeout):
		t.Fatalf("python3 %s did not start", strings.Join(args, " "))
	}
	return ""
}

func TestHTTPClientAgainstPython(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "hello.txt"), []byte("hello from python\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "image.png"), httpBinaryFiles["image.png"], 0o644)
	addr := startPythonServer(t, "-m", "http.server", "0", "--bind", "127.0.0.1", "--directory", dir)
	r := runHTTPClient(t, "http://"+addr+"/hello.txt", "http://"+addr+"/image.png", "http://"+addr+"/missing")
	if r.Code != 0 {
		t.Fatalf("exit %d\n%s%s", r.Code, r.Stdout, r.Stderr)
	}
	for _, want := range []string{
		"*   Trying 127.0.0.1:",
		"> GET /hello.txt HTTP/1.1\n> Host: " + addr + "\n> User-Agent: sockplay-http/",
		"> Accept: */*\n> \n< HTTP/1.0 200 OK\n< Server: SimpleHTTP/",
		"< Content-Length: 18\n",
		"< \nhello from python\n* 18 bytes of body (Content-Length)\n* Timings: name lookup ",
		", first byte ",
		"* Closing connection #0", // python's HTTP/1.0 closes
		"* [264 bytes of binary data (image/png) not shown",
		"< HTTP/1.0 404 File not found",
	} {
		if !strings.Contains(r.Stdout, want) {
			t.Errorf("output lacks %q:\n%s", want, r.Stdout)
		}
	}
	if n := strings.Count(r.Stdout, "* Connected to"); n != 3 {
		t.Errorf("%d connections, want 3 (HTTP/1.0 closes each):\n%s", n, r.Stdout)
	}
	// -o saves the exact bytes
	out := filepath.Join(t.TempDir(), "saved.png")
	r = runHTTPClient(t, "-o", out, "http://"+addr+"/image.png")
	if data, _ := os.ReadFile(out); r.Code != 0 || !bytes.Equal(data, httpBinaryFiles["image.png"]) || !strings.Contains(r.Stdout, "264 bytes written to "+out) {
		t.Errorf("-o: exit %d, %d bytes saved\n%s", r.Code, len(data), r.Stdout)
	}
}

func TestHTTPClientChunked(t *testing.T) {
	addr := startPythonServer(t, "scripts/testdata/chunked_server.py")
	r := runHTTPClient(t, "http://"+addr+"/a", "http://"+addr+"/b")
	if r.Code != 0 {
		t.Fatalf("exit %d\n%s%s", r.Code, r.Stdout, r.Stderr)
	}
	for _, want := range []string{
		"< Transfer-Encoding: chunked\n",
		"< \nhello, chunked world\n* trailer x-checksum: 21\n* 21 bytes of body (chunked: 3 chunks of 7 + 8 + 6 bytes, then the last chunk)\n",
		"* Re-using existing connection #0 with host 127.0.0.1",
		"* Connection #0 to host 127.0.0.1 left intact",
	} {
		if !strings.Contains(r.Stdout, want) {
			t.Errorf("output lacks %q:\n%s", want, r.Stdout)
		}
	}
	// and a chunked response from http_server.lua's CGI
	srv := startHTTPServer(t, httpWebRoot(t), "--cgi-bin", "scripts/cgi-bin")
	r = runHTTPClient(t, "http://"+srv.Addr+"/cgi-bin/hello.sh?name=client")
	if r.Code != 0 || !strings.Contains(r.Stdout, "< Transfer-Encoding: chunked\n") || !strings.Contains(r.Stdout, "Hello, client, from a shell script") {
		t.Errorf("exit %d\n%s", r.Code, r.Stdout)
	}
}

// The transcript in the block comment at the end of http_client.lua is
// what it prints, with the port, dates, ETags and times scrubbed.
func TestHTTPClientTranscript(t *testing.T) {
	src, err := os.ReadFile(scripttest.Script("http_client.lua"))
	if err != nil {
		t.Fatal(err)
	}
	block := regexp.MustCompile(`(?s)\n--\[\[ Output against [^\n]*\n[^\n]*\n\n\$ sockplay (\S+) ([^\n]*)\n(.*)\]\]\n$`).FindSubmatch(src)
	if block == nil {
		t.Fatal("no transcript block at the end of http_client.lua")
	}
	srv := startHTTPServer(t, filepath.Join(scripttest.Root(), "scripts", "testdata", "www"))
	args := strings.Fields(strings.ReplaceAll(string(block[2]), "PORT", srv.Port))
	r := runHTTPClient(t, args...)
	got := r.Stdout
	for _, s := range []struct{ re, with string }{
		{`127\.0\.0\.1:` + srv.Port, "127.0.0.1:PORT"},
		{`port ` + srv.Port, "port PORT"},
		{`(?m)^< (Date|Last-Modified): .*$`, "< $1: DATE"},
		{`(?m)^< ETag: .*$`, `< ETag: "ETAG"`},
		{`\d+\.\d+ ms`, "N ms"},
	} {
		got = regexp.MustCompile(s.re).ReplaceAllString(got, s.with)
	}
	if want := string(block[3]); got != want {
		t.Errorf("http_client.lua %s printed (scrubbed):\n%s\nwant (from its transcript block):\n%s", block[2], got, want)
	}
}

func TestHTTPClientAgainstServer(t *testing.T) {
	root := httpWebRoot(t)
	srv := startHTTPServer(t, root, "--cgi-bin", "scripts/cgi-bin", "--allow-put")
	base := "http://" + srv.Addr
	t.Run("one connection for several URLs", func(t *testing.T) {
		r := runHTTPClient(t, base+"/index.html", base+"/notes.txt", base+"/image.png")
		if r.Code != 0 {
			t.Fatalf("exit %d\n%s%s", r.Code, r.Stdout, r.Stderr)
		}
		if n := strings.Count(r.Stdout, "* Re-using existing connection #0 with host 127.0.0.1"); n != 2 {
			t.Errorf("%d reuses, want 2:\n%s", n, r.Stdout)
		}
		for _, want := range []string{"< HTTP/1.1 200 OK\n< Date: ", "< Content-Type: text/html; charset=utf-8\n", "Hello from sockplay", "plain text, one line\n* 21 bytes of body (Content-Length)\n", "(image/png) not shown"} {
			if !strings.Contains(r.Stdout, want) {
				t.Errorf("output lacks %q:\n%s", want, r.Stdout)
			}
		}
	})
	t.Run("-L follows redirects", func(t *testing.T) {
		r := runHTTPClient(t, "-L", base+"/docs")
		if r.Code != 0 || !strings.Contains(r.Stdout, "< HTTP/1.1 301 Moved Permanently\n") ||
			!strings.Contains(r.Stdout, "* Issue another request to this URL: '"+base+"/docs/'") ||
			!strings.Contains(r.Stdout, "the docs index") {
			t.Errorf("exit %d\n%s", r.Code, r.Stdout)
		}
		r = runHTTPClient(t, base+"/docs")
		if strings.Contains(r.Stdout, "Issue another request") {
			t.Errorf("followed a redirect without -L:\n%s", r.Stdout)
		}
	})
	t.Run("-I", func(t *testing.T) {
		r := runHTTPClient(t, "-I", base+"/notes.txt")
		if r.Code != 0 || !strings.Contains(r.Stdout, "> HEAD /notes.txt HTTP/1.1\n") || !strings.Contains(r.Stdout, "< Content-Length: 21\n") ||
			strings.Contains(r.Stdout, "plain text") || !strings.Contains(r.Stdout, "* no body\n") {
			t.Errorf("exit %d\n%s", r.Code, r.Stdout)
		}
	})
	t.Run("-d, -H and -X", func(t *testing.T) {
		r := runHTTPClient(t, "-d", "name=value", "-H", "X-Test: from the client", base+"/cgi-bin/echo.sh/p?q=1")
		for _, want := range []string{"> POST /cgi-bin/echo.sh/p?q=1 HTTP/1.1\n", "> Content-Length: 10\n", "> Content-Type: application/x-www-form-urlencoded\n", "> X-Test: from the client\n> \nname=value\n* upload completely sent off: 10 bytes\n", "HTTP_X_TEST=from the client\n", "REQUEST_METHOD=POST\n", "body (10 bytes):\nname=value"} {
			if !strings.Contains(r.Stdout, want) {
				t.Errorf("output lacks %q:\n%s", want, r.Stdout)
			}
		}
		r = runHTTPClient(t, "-X", "PUT", "-d", "put by the client\n", base+"/put.txt")
		if data, _ := os.ReadFile(filepath.Join(root, "put.txt")); !strings.Contains(r.Stdout, "< HTTP/1.1 201 Created\n") || string(data) != "put by the client\n" {
			t.Errorf("PUT: file %q\n%s", data, r.Stdout)
		}
		r = runHTTPClient(t, "-H", "User-Agent: custom/1", "-H", "Accept:", base+"/notes.txt")
		if !strings.Contains(r.Stdout, "> User-Agent: custom/1\n") || strings.Contains(r.Stdout, "> Accept:") {
			t.Errorf("-H replacing and removing defaults:\n%s", r.Stdout)
		}
	})
	t.Run("failures", func(t *testing.T) {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		closed := l.Addr().String()
		l.Close()
		r := runHTTPClient(t, "http://"+closed+"/")
		if r.Code != 7 || !strings.Contains(r.Stderr, "Failed to connect to 127.0.0.1 port") {
			t.Errorf("refused: exit %d, want 7\n%s%s", r.Code, r.Stdout, r.Stderr)
		}
		r = runHTTPClient(t, "https://"+srv.Addr+"/")
		if r.Code != 1 || !strings.Contains(r.Stderr, `Protocol "https" not supported`) {
			t.Errorf("https: exit %d\n%s", r.Code, r.Stderr)
		}
		r = runHTTPClient(t)
		if r.Code != 2 || !strings.Contains(r.Stderr, "no URL given") {
			t.Errorf("no URL: exit %d %q", r.Code, r.Stderr)
		}
	})
}
