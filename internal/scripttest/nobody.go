package scripttest

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"sockplay/internal/testpeer"
)

// AsNobody prepares a run of sockplay without privileges: a directory
// everyone may read holding a copy of the binary and of the named scripts
// (paths under scripts/, kept as they are), and a function that runs that
// copy there as the user nobody, through setpriv, and returns its output
// (stdout and stderr together) and exit code. Dropping to nobody needs
// root: without it t skips, or fails when peers are required.
func AsNobody(t testing.TB, scripts ...string) (dir string, run func(args ...string) (out string, code int)) {
	t.Helper()
	testpeer.Root(t)
	setpriv := testpeer.Path(t, "setpriv")
	dir = t.TempDir()
	os.Chmod(dir, 0o755)
	os.Chmod(filepath.Dir(dir), 0o755) // testing's own directory above it
	copyFile := func(from, to string, mode os.FileMode) {
		data, err := os.ReadFile(from)
		if err == nil {
			err = os.MkdirAll(filepath.Dir(to), 0o755)
		}
		if err == nil {
			err = os.WriteFile(to, data, mode)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	bin := filepath.Join(dir, "sockplay")
	copyFile(Binary(t), bin, 0o755)
	for _, s := range scripts {
		copyFile(Script(s), filepath.Join(dir, s), 0o644)
	}
	return dir, func(args ...string) (string, int) {
		cmd := exec.Command(setpriv, append([]string{"--reuid=nobody", "--regid=nogroup", "--clear-groups", bin}, args...)...)
		cmd.Dir = dir
		out, _ := cmd.CombinedOutput()
		return string(out), cmd.ProcessState.ExitCode()
	}
}
