package repl

import (
	"context"
	"errors"
	"fmt"
	"strings"
)

// tourStep is one step of .tour: what it shows, and the lines it types.
type tourStep struct {
	say  string
	code []string
}

var tour = []tourStep{
	{
		say: "Open a listening TCP socket on a free port of the loopback interface.\n" +
			"The kernel queues incoming connections on it until someone accepts them.",
		code: []string{`srv = sock.listen_tcp("127.0.0.1", 0)`, `srv`},
	},
	{
		say: "Connect to it from a background task. spawn runs a function as a task:\n" +
			"while it waits (to connect, to read), everything else, this prompt too,\n" +
			"carries on. The client sends a line, then waits for one.",
		code: []string{`client = spawn(function() c = sock.dial_tcp(srv:getsockname()); c:write("hi from the client\n"); print("client read: " .. c:read_line()) end)`},
	},
	{
		say:  "Accept the connection: a new socket, the server's end of it.",
		code: []string{`conn = srv:accept()`, `conn`},
	},
	{
		say:  "Read the client's line from it.",
		code: []string{`conn:read_line()`},
	},
	{
		say: "The descriptor table: the listener and both ends of one TCP connection,\n" +
			"all in this process. OWNER says which variable or task holds each;\n" +
			"IN/OUT counts the bytes each end moved.",
		code: []string{`.fds`},
	},
	{
		say: "Send a line. The client task reads it and prints it; wait(client)\n" +
			"waits for the task to end.",
		code: []string{`conn:write("hello\n")`, `wait(client)`},
	},
	{
		say: "Close the server's end. The kernel sends FIN: the client's socket goes to\n" +
			"CLOSE_WAIT (the peer closed, it has not yet), ours to FIN_WAIT2 once the\n" +
			"FIN is acknowledged, and it no longer has an fd (FD -): the kernel keeps\n" +
			"the connection, not the process.",
		code: []string{`conn:close()`, `sleep(0.1) -- a moment for the FIN and its ACK`, `.fds`},
	},
	{
		say: "Close the client's end too. The side that closed first waits in TIME_WAIT\n" +
			"(a minute on Linux); the listener stays open for more.",
		code: []string{`c:close()`, `sleep(0.1)`, `.fds`},
	},
}

const tourEnd = "That was the tour. `ss -tanp` in another terminal shows the same sockets\n" +
	"from outside; .watch redraws the table live while background tasks work.\n" +
	"Try .fd srv, .trace on, help(sock.accept); .help lists the rest."

// cmdTour runs the walk. At a terminal it pauses before each step so the
// code can be read first; elsewhere it runs straight through.
func (r *REPL) cmdTour(ctx context.Context, arg string) {
	fmt.Fprintln(r.out, "A tour in", len(tour), "steps. Each shows the code it runs; type it yourself later.")
	for i, st := range tour {
		fmt.Fprintf(r.out, "\n[%d/%d] %s\n", i+1, len(tour), strings.ReplaceAll(st.say, "\n", "\n      "))
		if r.opts.Interactive {
			answer, err := r.in.ReadLine("      (Enter runs it, q stops) ")
			if err != nil || strings.TrimSpace(answer) == "q" {
				if err != nil && !errors.Is(err, ErrInterrupted) {
					fmt.Fprintln(r.out)
				}
				fmt.Fprintln(r.out, "tour stopped; the sockets it made are still yours (.fds).")
				return
			}
		}
		for _, line := range st.code {
			fmt.Fprintln(r.out, Prompt+line)
			wasFailed := r.failed
			r.Execute(ctx, line)
			if ctx.Err() != nil || r.h.Exiting() {
				return
			}
			if r.lastInterrupted {
				fmt.Fprintln(r.out, "tour stopped.")
				return
			}
			if r.failed && !wasFailed {
				fmt.Fprintln(r.out, "tour stopped: that step failed.")
				return
			}
		}
	}
	fmt.Fprintln(r.out, "\n"+tourEnd)
}
