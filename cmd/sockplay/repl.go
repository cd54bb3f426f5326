package main

import (
	"bufio"
	"context"
	"fmt"
	"io"

	"sockplay/lua"
)

// runREPL is a minimal line evaluator until the REPL lands.
func runREPL(h *lua.Host, stdin io.Reader, stdout, stderr io.Writer, tty bool) int {
	sc := bufio.NewScanner(stdin)
	status := 0
	for sc.Scan() {
		if _, err := h.Eval(context.Background(), "stdin", sc.Text()); err != nil {
			fmt.Fprintln(stderr, lua.FormatError(err))
			status = 1
		}
	}
	h.Wait(nil)
	return status
}
