package main

import (
	"bufio"
	"bytes"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"sockplay/internal/scripttest"
)

// Ctrl-C (SIGINT) ends a run with status 130 and one line, whether the
// code is a -e chunk or a script, and wherever it waits.
func TestInterruptExitStatus(t *testing.T) {
	for _, args := range [][]string{
		{"-e", `print("ready"); sleep(30)`},
		{"-e", `local s = sock.bind_udp("127.0.0.1", 0); print("ready"); s:recvfrom()`},
		{"testdata/interrupt_me.lua"},
	} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			cmd := exec.Command(scripttest.Binary(t), args...)
			var errb bytes.Buffer
			cmd.Stderr = &errb
			out, err := cmd.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			defer cmd.Process.Kill()
			if line, _ := bufio.NewReader(out).ReadString('\n'); line != "ready\n" {
				t.Fatalf("first line %q", line)
			}
			cmd.Process.Signal(syscall.SIGINT)
			done := make(chan error, 1)
			go func() { done <- cmd.Wait() }()
			select {
			case err := <-done:
				ee, ok := err.(*exec.ExitError)
				if !ok || ee.ExitCode() != 130 {
					t.Fatalf("exit %v, want status 130; stderr %q", err, errb.String())
				}
			case <-time.After(10 * time.Second):
				t.Fatal("still running 10 s after SIGINT")
			}
			if got := errb.String(); got != "sockplay: interrupted\n" {
				t.Errorf("stderr %q, want \"sockplay: interrupted\\n\"", got)
			}
		})
	}
}
