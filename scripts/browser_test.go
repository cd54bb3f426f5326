package scripts_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"sockplay/internal/scripttest"
	"sockplay/internal/testpeer"
)

// CORS proven in a real browser: headless Chromium loads
// testdata/cors_page/index.html from http_server.lua (origin A) and the
// page calls cors_server.lua (origin B) with fetch(). What the page saw it
// writes into itself; --dump-dom prints it; cors_server.lua's log says
// what the browser asked.

type pageStep struct {
	Step      string `json:"step"`
	OK        bool   `json:"ok"`
	Status    int    `json:"status"`
	RequestID string `json:"requestId"`
	Body      string `json:"body"`
	Error     string `json:"error"`
}

type pageResult struct {
	Origin  string     `json:"origin"`
	Results []pageStep `json:"results"`
}

// chromium opens url in a fresh headless browser, waits for the page's
// fetches, and returns what the page wrote. The browser runs in a process
// group of its own, killed at the end whatever happens.
func chromium(t *testing.T, url string) pageResult {
	t.Helper()
	bin := testpeer.Path(t, "chromium")
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin,
		"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--disable-default-apps", "--disable-extensions", "--no-default-browser-check",
		"--no-proxy-server", // the page's requests go straight to 127.0.0.1, whatever the environment says
		"--user-data-dir="+filepath.Join(dir, "profile"),
		"--virtual-time-budget=15000", // dump the DOM once the fetches are done (or 15 s of page time)
		"--dump-dom", url)
	cmd.Env = append(os.Environ(), "HOME="+dir, "XDG_CONFIG_HOME="+dir, "XDG_CACHE_HOME="+dir)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pgid := cmd.Process.Pid
	err := cmd.Wait()
	syscall.Kill(-pgid, syscall.SIGKILL) // helpers (zygote, utility processes) go too
	if ctx.Err() != nil {
		t.Fatalf("chromium %s: still running after 90 s\nstderr:\n%s", url, tailOf(errb.String()))
	}
	if err != nil {
		t.Fatalf("chromium %s: %v\nstderr:\n%s", url, err, tailOf(errb.String()))
	}
	dom := out.String()
	i := strings.Index(dom, "RESULT {")
	if i < 0 {
		t.Fatalf("the page wrote no result:\n%s\nstderr:\n%s", dom, tailOf(errb.String()))
	}
	j := strings.Index(dom[i:], "</pre>")
	if j < 0 {
		t.Fatalf("no </pre> after the result:\n%s", dom)
	}
	text := strings.NewReplacer("&quot;", `"`, "&lt;", "<", "&gt;", ">", "&amp;", "&").Replace(dom[i+len("RESULT ") : i+j])
	var r pageResult
	if err := json.Unmarshal([]byte(text), &r); err != nil {
		t.Fatalf("the page's result is not JSON: %v\n%s", err, text)
	}
	if len(r.Results) != 3 {
		t.Fatalf("want 3 steps, got %+v", r)
	}
	return r
}

func tailOf(s string) string {
	if len(s) > 3000 {
		return "..." + s[len(s)-3000:]
	}
	return s
}

// linesFrom returns the log lines of s after the first n.
func linesFrom(s *scripttest.Server, n int) []string {
	all := strings.Split(strings.TrimRight(s.Output(), "\n"), "\n")
	if len(all) == 1 && all[0] == "" {
		all = nil
	}
	if n > len(all) {
		return nil
	}
	return all[n:]
}

func TestCORSInChromium(t *testing.T) {
	testpeer.Path(t, "chromium")
	page := scripttest.Start(t, scripttest.Script("http_server.lua"), "--root",
		filepath.Join(scripttest.Root(), "scripts", "testdata", "cors_page"), "--port", "0")
	originA := "http://127.0.0.1:" + page.Port
	api := scripttest.Start(t, scripttest.Script("cors_server.lua"), "--port", "0",
		"--allow-origin", originA, "--allow-methods", "GET, PUT",
		"--allow-headers", "Content-Type, X-Sockplay", "--expose-headers", "X-Request-Id", "--max-age", "600")
	originB := "http://127.0.0.1:" + api.Port
	// The proxy serves the page and, under /api/, origin B: all on one origin.
	rp := scripttest.Start(t, scripttest.Script("reverse_proxy.lua"), "--port", "0",
		"--backend", page.Addr, "--route", "/api/="+api.Addr)

	kinds := func(lines []string) []string {
		var out []string
		for _, l := range lines {
			f := strings.Fields(l)
			if len(f) >= 3 {
				out = append(out, f[0]+" "+strings.TrimPrefix(f[2], `"`))
			}
		}
		return out
	}

	t.Run("allowed origin", func(t *testing.T) {
		r := chromium(t, originA+"/index.html?api="+originB)
		for _, s := range r.Results {
			if !s.OK {
				t.Errorf("%s failed in the page: %s", s.Step, s.Error)
			}
		}
		if r.Results[0].Status != 200 || !strings.Contains(r.Results[0].Body, "hello from cors_server.lua") {
			t.Errorf("simple GET: %+v", r.Results[0])
		}
		if r.Results[1].Status != 201 || r.Results[2].Status != 200 {
			t.Errorf("PUTs: %+v %+v", r.Results[1], r.Results[2])
		}
		if r.Results[0].RequestID == "" {
			t.Errorf("X-Request-Id is exposed, yet the page could not read it: %+v", r.Results[0])
		}
		// The browser sent: the GET at once, one preflight, the PUT, and the
		// second PUT on the strength of the kept preflight (Max-Age 600).
		got := strings.Join(kinds(linesFrom(api, 0)), ", ")
		if want := "SIMPLE GET, PREFLIGHT OPTIONS, ACTUAL PUT, ACTUAL PUT"; got != want {
			t.Errorf("the browser's requests: %s\nwant %s\nlog:\n%s", got, want, api.Output())
		}
		if !strings.Contains(api.Output(), "origin "+originA+" wants PUT with content-type,x-sockplay: allowed") {
			t.Errorf("log lacks the allowed preflight:\n%s", api.Output())
		}
	})

	t.Run("origin not allowed", func(t *testing.T) {
		// localhost and 127.0.0.1 are two origins: the same page, not allowed.
		originC := "http://localhost:" + page.Port
		before := len(linesFrom(api, 0))
		r := chromium(t, originC+"/index.html?api="+originB)
		for _, s := range r.Results {
			if s.OK || !strings.Contains(s.Error, "Failed to fetch") {
				t.Errorf("%s from %s: want a network error in the page, got %+v", s.Step, originC, s)
			}
		}
		lines := linesFrom(api, before)
		var refused, puts int
		for _, l := range lines {
			if strings.HasPrefix(l, "PREFLIGHT ") && strings.Contains(l, "refused: origin "+originC+" is not allowed") {
				refused++
			}
			if strings.HasPrefix(l, "ACTUAL ") {
				puts++
			}
		}
		// A refused preflight is not kept: each PUT asks again, and none is sent.
		if refused == 0 || puts != 0 {
			t.Errorf("want refused preflights and no PUT, got:\n%s", strings.Join(lines, "\n"))
		}
		// The simple GET did reach the server: CORS hides answers, it does
		// not stop simple requests.
		if !strings.Contains(strings.Join(lines, "\n"), "origin "+originC+" origin not allowed") {
			t.Errorf("log lacks the simple GET from %s:\n%s", originC, strings.Join(lines, "\n"))
		}
	})

	t.Run("through a reverse proxy on the page's origin", func(t *testing.T) {
		before := len(linesFrom(api, 0))
		r := chromium(t, "http://"+rp.Addr+"/index.html?api=")
		for _, s := range r.Results {
			if !s.OK || s.Status >= 400 {
				t.Errorf("%s through the proxy: %+v", s.Step, s)
			}
		}
		lines := linesFrom(api, before)
		got := strings.Join(kinds(lines), ", ")
		// Same origin: no preflight, and the server's policy (which does not
		// list the proxy's origin) does not matter to the browser.
		if want := "NO-ORIGIN GET, ACTUAL PUT, ACTUAL PUT"; got != want {
			t.Errorf("requests through the proxy: %s\nwant %s\nlog:\n%s", got, want, strings.Join(lines, "\n"))
		}
		if !strings.Contains(strings.Join(lines, "\n"), "origin not allowed") {
			t.Errorf("the PUTs should come from an origin cors_server.lua does not allow:\n%s", strings.Join(lines, "\n"))
		}
		if log := rp.Output(); !strings.Contains(log, `"PUT /api/items/7 HTTP/1.1" 200`) {
			t.Errorf("proxy log:\n%s", log)
		}
	})
}
