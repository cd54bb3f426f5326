package testpeer

import (
	"bufio"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Sbin finds a program that may live in an sbin directory that is not on a
// user's PATH (dnsmasq), skipping or failing t as Path does when it is
// nowhere.
func Sbin(t testing.TB, name string) string {
	t.Helper()
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	for _, dir := range []string{"/usr/sbin", "/sbin", "/usr/local/sbin"} {
		p := filepath.Join(dir, name)
		if st, err := os.Stat(p); err == nil && !st.IsDir() && st.Mode()&0o111 != 0 {
			return p
		}
	}
	return Path(t, name)
}

// Dnsmasq starts dnsmasq in the foreground on 127.0.0.1 and a free port,
// answering from a hosts file with the given lines, for the names under
// test. only (others are REFUSED: it has no upstream), with args added to
// its command line. It waits for the "started" line dnsmasq logs once its
// sockets are bound, kills it when the test ends, and returns its port.
func Dnsmasq(t testing.TB, hosts string, args ...string) int {
	t.Helper()
	bin := Sbin(t, "dnsmasq")
	dir := t.TempDir()
	hostsFile := filepath.Join(dir, "hosts")
	if err := os.WriteFile(hostsFile, []byte(hosts), 0o644); err != nil {
		t.Fatal(err)
	}
	var lastLog string
	for try := 0; try < 5; try++ {
		port := freeUDPPort(t)
		cmd := exec.Command(bin, append([]string{
			"--no-daemon", "--port=" + strconv.Itoa(port), "--listen-address=127.0.0.1", "--bind-interfaces",
			"--no-resolv", "--no-hosts", "--conf-file=/dev/null", "--pid-file=",
			"--log-facility=-", "--log-queries",
			"--addn-hosts=" + hostsFile,
			"--local=/test/", // names under test. that it does not know are NXDOMAIN
		}, args...)...)
		if os.Geteuid() == 0 {
			cmd.Args = append(cmd.Args, "--user=root") // else it drops to nobody
		}
		stderr, err := cmd.StderrPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		started := make(chan bool, 1)
		logDone := make(chan struct{})
		var log strings.Builder
		go func() {
			defer close(logDone)
			sc := bufio.NewScanner(stderr)
			sent := false
			for sc.Scan() {
				if !sent {
					log.WriteString(sc.Text() + "\n")
				}
				if !sent && strings.Contains(sc.Text(), "started, version") {
					started <- true
					sent = true
				}
			}
			if !sent {
				started <- false
			}
		}()
		var ok bool
		select {
		case ok = <-started:
		case <-time.After(20 * time.Second):
		}
		if ok {
			t.Cleanup(func() {
				cmd.Process.Kill()
				cmd.Wait()
				<-logDone
			})
			return port
		}
		cmd.Process.Kill()
		cmd.Wait()
		<-logDone
		lastLog = log.String()
	}
	t.Fatalf("dnsmasq did not start after 5 tries:\n%s", lastLog)
	return 0
}

// freeUDPPort finds a port free for UDP on 127.0.0.1. Another process may
// take it before dnsmasq binds it: Dnsmasq retries.
func freeUDPPort(t testing.TB) int {
	t.Helper()
	c, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return c.LocalAddr().(*net.UDPAddr).Port
}
