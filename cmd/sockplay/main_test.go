package main

import (
	"bytes"
	"strings"
	"testing"
)

// The runner's behaviour as golden transcripts: arguments and stdin in,
// stdout, stderr and the exit status out.
func TestRunner(t *testing.T) {
	tests := []struct {
		name       string
		args       []string
		stdin      string
		wantOut    string
		wantErr    string // exact, unless errHas is set
		errHas     []string
		errHasNot  []string
		wantStatus int
	}{
		{name: "version", args: []string{"--version"}, wantOut: "sockplay 0.1.0 (Lua 5.1, gopher-lua)\n"},
		{name: "help", args: []string{"--help"}, wantOut: usage},
		{name: "unknown option", args: []string{"--bogus"}, wantErr: "sockplay: unrecognized option '--bogus'\n" + usage, wantStatus: 1},
		{name: "-e needs argument", args: []string{"-e"}, wantErr: "sockplay: '-e' needs argument\n" + usage, wantStatus: 1},
		{name: "-e", args: []string{"-e", "print(1 + 1)"}, wantOut: "2\n"},
		{name: "-e twice in order", args: []string{"-e", "x = 20", "-e", "print(x + 1)"}, wantOut: "21\n"},
		{name: "empty", args: []string{"-e", ""}},
		{name: "script args", args: []string{"testdata/args.lua", "a", "b"}, wantOut: "2\ttestdata/args.lua\ta\tb\n"},
		{name: "stdin script", args: []string{"-", "x"}, stdin: "print('from stdin', arg[1])", wantOut: "from stdin\tx\n"},
		{name: "os.exit", args: []string{"-e", "print('bye'); os.exit(3); print('not here')"}, wantOut: "bye\n", wantStatus: 3},
		{name: "os.exit true", args: []string{"-e", "os.exit(true)"}},
		{name: "os.exit false", args: []string{"-e", "os.exit(false)"}, wantStatus: 1},
		{name: "os.exit from a task", args: []string{"-e", "spawn(function() sleep(0.01); os.exit(4) end); sleep(10)"}, wantStatus: 4},
		{
			name: "syntax error", args: []string{"-e", "x = = 1"}, wantStatus: 1,
			errHas: []string{"sockplay: (command line 1) line:1(column:5) near '='"},
		},
		{
			name: "error with traceback", args: []string{"testdata/error_in_function.lua"}, wantStatus: 1,
			errHas:    []string{"sockplay: testdata/error_in_function.lua:2: something broke", "stack traceback:", "error_in_function.lua:5: in function 'outer'"},
			errHasNot: []string{"goroutine", ".go:", "panic"},
		},
		{
			name: "missing script", args: []string{"testdata/nope.lua"}, wantStatus: 1,
			wantErr: "sockplay: cannot open testdata/nope.lua: no such file or directory\n",
		},
		{
			name: "argument error names the function", args: []string{"-e", "sock.connect(1)"}, wantStatus: 1,
			errHas: []string{"bad argument #2 to 'connect' (string expected, got nil)"},
		},
		{
			name: "task error ends only the task", args: []string{"testdata/task_error.lua"}, wantOut: "main goes on\n", wantStatus: 1,
			errHas: []string{"task 2 (testdata/task_error.lua:1) failed: testdata/task_error.lua:1: task broke"},
		},
		{name: "process lives while tasks run", args: []string{"testdata/server_lives.lua"}, wantOut: "main done\ntask done\n"},
		{name: "world failure returns nil, msg, code", args: []string{"-e", "print(sock.connect(sock.open('tcp'), '127.0.0.1', 1))"}, wantOut: "nil\tconnection refused\tECONNREFUSED\n"},
		{
			name: "trace", args: []string{"--trace", "-e", "sock.close(sock.open('udp'))"},
			errHas: []string{"socket(udp) = ", "close(", "<UDP>) = 0 <"},
		},
		{name: "piped stdin without a script runs line by line", stdin: "x = 1\nprint(x + 1)\n", wantOut: "2\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			status := run(tt.args, strings.NewReader(tt.stdin), &out, &errb)
			if status != tt.wantStatus {
				t.Errorf("status %d, want %d\nstderr:\n%s", status, tt.wantStatus, errb.String())
			}
			if out.String() != tt.wantOut {
				t.Errorf("stdout:\n%q\nwant:\n%q", out.String(), tt.wantOut)
			}
			if tt.errHas == nil {
				if errb.String() != tt.wantErr {
					t.Errorf("stderr:\n%q\nwant:\n%q", errb.String(), tt.wantErr)
				}
			}
			for _, s := range tt.errHas {
				if !strings.Contains(errb.String(), s) {
					t.Errorf("stderr lacks %q:\n%s", s, errb.String())
				}
			}
			for _, s := range tt.errHasNot {
				if strings.Contains(errb.String(), s) {
					t.Errorf("stderr has %q:\n%s", s, errb.String())
				}
			}
		})
	}
}
