// Package testpeer finds the real programs tests talk to (nc, curl, dig,
// dnsmasq ...). A missing peer skips the test with a one-line reason, or
// fails it when SOCKPLAY_REQUIRE_PEERS=1, as CI sets.
package testpeer

import (
	"bufio"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"
)

// Required reports whether missing peers fail tests instead of skipping them.
func Required() bool { return os.Getenv("SOCKPLAY_REQUIRE_PEERS") == "1" }

// Need returns the path of each named program, skipping (or failing) t when
// one is missing.
func Need(t testing.TB, names ...string) []string {
	t.Helper()
	paths := make([]string, len(names))
	for i, name := range names {
		p, err := exec.LookPath(name)
		if err != nil {
			if Required() {
				t.Fatalf("peer %s is not installed (SOCKPLAY_REQUIRE_PEERS=1); .ci/run installs it", name)
			}
			t.Skipf("peer %s is not installed; skipping (set SOCKPLAY_REQUIRE_PEERS=1 to fail instead)", name)
		}
		paths[i] = p
	}
	return paths
}

// Path is Need for a single program.
func Path(t testing.TB, name string) string {
	t.Helper()
	return Need(t, name)[0]
}

// Root skips t unless it runs as root (network namespaces, nftables), or
// fails it when SOCKPLAY_REQUIRE_PEERS=1.
func Root(t testing.TB) {
	t.Helper()
	if os.Geteuid() == 0 {
		return
	}
	if Required() {
		t.Fatal("this test needs root (SOCKPLAY_REQUIRE_PEERS=1); run it as root")
	}
	t.Skip("needs root (network namespaces); skipping")
}

// NeedFile returns path, skipping (or failing) t when it does not exist:
// a library a Debian package installs (lua-socket's socket.lua ...).
func NeedFile(t testing.TB, path, pkg string) string {
	t.Helper()
	if _, err := os.Stat(path); err != nil {
		if Required() {
			t.Fatalf("%s is missing: package %s is not installed (SOCKPLAY_REQUIRE_PEERS=1); .ci/run installs it", path, pkg)
		}
		t.Skipf("%s is missing (package %s); skipping (set SOCKPLAY_REQUIRE_PEERS=1 to fail instead)", path, pkg)
	}
	return path
}

// Tcpdump starts tcpdump with args (an interface, -w FILE, a filter ...),
// adding the options that make it write each packet as it comes and keep
// root's rights, and returns once it listens. stop ends it (a signal: it
// writes what it holds); the test's end stops it too.
func Tcpdump(t testing.TB, args ...string) (stop func()) {
	t.Helper()
	cmd := exec.Command(Path(t, "tcpdump"), append([]string{"-U", "--immediate-mode", "-Z", "root"}, args...)...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cmd.Process.Signal(os.Interrupt)
			done := make(chan struct{})
			go func() { cmd.Wait(); close(done) }()
			select {
			case <-done:
			case <-time.After(5 * time.Second):
				cmd.Process.Kill()
				<-done
			}
		})
	}
	t.Cleanup(stop)
	failed := make(chan string, 1) // what tcpdump said, if it ended first
	go func() {
		var log strings.Builder
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			if strings.Contains(sc.Text(), "listening on") {
				close(failed)
				io.Copy(io.Discard, stderr)
				return
			}
			log.WriteString(sc.Text() + "\n")
		}
		failed <- log.String()
	}()
	select {
	case msg, ok := <-failed:
		if ok {
			t.Fatalf("tcpdump %s did not start:\n%s", strings.Join(args, " "), msg)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("tcpdump did not listen within 10 s")
	}
	return stop
}
