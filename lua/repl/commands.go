package repl

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"unicode"

	"sockplay/lua"
	"sockplay/sock"
	"sockplay/sock/wire"
)

// command is one of the REPL's dot commands.
type command struct {
	name string
	args string
	doc  string
	run  func(r *REPL, ctx context.Context, arg string)
}

var commands []command

func init() {
	// Filled here rather than in the declaration: .help lists commands.
	commands = []command{
		{".help", "", "this list", (*REPL).cmdHelp},
		{".tour", "", "a short guided walk: a listener, a client task, the descriptor table, states changing", (*REPL).cmdTour},
		{".fds", "[all]", "the descriptor table; all adds fds 0, 1, 2 and the Go runtime's", (*REPL).cmdFds},
		{".fd", "N | var", "one fd's chain: fd -> open file description -> inode -> kernel socket and queues", (*REPL).cmdFd},
		{".watch", "[all]", "the descriptor table redrawn twice a second, changes highlighted, until a key is pressed", (*REPL).cmdWatch},
		{".trace", "on | off | hex", "print every socket call strace-style (hex: with payload dumps)", (*REPL).cmdTrace},
		{".capture", "on | off | FILTER", "show the packets of this session's sockets (or those a tcpdump FILTER keeps) as they pass, each with its fd and the call that sent it (needs root)", (*REPL).cmdCapture},
		{".ladder", "FD [FILE.svg]", "FD's last TCP connection as a sequence diagram, from the packets a capture kept (start one with .capture on first); FILE.svg writes it as an image too", (*REPL).cmdLadder},
		{".tasks", "", "the background tasks and what they wait on", (*REPL).cmdTasks},
		{".lab", "", "the lab's topology: hosts with their devices, routes and NAT; links with their shaping and counters", (*REPL).cmdLab},
		{".kill", "N", "end task N: what it waits on wakes and it stops", (*REPL).cmdKill},
		{".load", "FILE", "run a Lua file here; its globals stay", (*REPL).cmdLoad},
		{".exit", "", "leave, closing every fd (Ctrl-D does the same)", (*REPL).cmdExit},
	}
}

// isCommand tells a dot command from Lua (.5 is a number).
func isCommand(line string) bool {
	s := strings.TrimSpace(line)
	return len(s) > 1 && s[0] == '.' && unicode.IsLetter(rune(s[1]))
}

func (r *REPL) command(ctx context.Context, line string) {
	name, arg, _ := strings.Cut(line, " ")
	arg = strings.TrimSpace(arg)
	for _, c := range commands {
		if c.name == name {
			c.run(r, ctx, arg)
			return
		}
	}
	fmt.Fprintf(r.errw, "unknown command %s (.help lists them)\n", name)
	r.failed = true
}

func (r *REPL) usage(name string) {
	for _, c := range commands {
		if c.name == name {
			fmt.Fprintf(r.errw, "usage: %s\n", strings.TrimSpace(c.name+" "+c.args))
		}
	}
	r.failed = true
}

func (r *REPL) cmdHelp(ctx context.Context, arg string) {
	var b strings.Builder
	b.WriteString("Type Lua: an expression prints its value (1 + 1, =x, sock.tcp()); a line that is\n")
	b.WriteString("not finished (function f(), an open table or [[) goes on at the >> prompt.\n")
	b.WriteString("`local x = ...` typed alone defines x for the next lines too.\n\n")
	rows := [][]string{}
	for _, c := range commands {
		rows = append(rows, []string{"  " + strings.TrimSpace(c.name+" "+c.args), c.doc})
	}
	b.WriteString(lua.AlignRows(rows))
	b.WriteString("\nhelp() lists the modules, help(\"sock\") a module's functions, help(sock.accept) one.\n")
	b.WriteString("Keys: Tab completes, Up/Down and Ctrl-R search history, Ctrl-C stops what runs\n")
	b.WriteString("(background tasks go on) or clears the line, Ctrl-D on an empty line quits.")
	fmt.Fprintln(r.out, b.String())
}

func (r *REPL) cmdFds(ctx context.Context, arg string) {
	all := false
	switch arg {
	case "":
	case "all":
		all = true
	default:
		r.usage(".fds")
		return
	}
	fmt.Fprint(r.out, renderTable(r.h.FdRows(all), "(no sockets open)"))
}

func (r *REPL) cmdLab(ctx context.Context, arg string) {
	if arg != "" {
		r.usage(".lab")
		return
	}
	fmt.Fprint(r.out, r.h.LabText())
}

func renderTable(rows [][]string, empty string) string {
	if len(rows) <= 1 {
		return empty + "\n"
	}
	return lua.AlignRows(rows)
}

// cmdFd shows one fd's chain.
func (r *REPL) cmdFd(ctx context.Context, arg string) {
	if arg == "" {
		r.usage(".fd")
		return
	}
	fd, ok := r.fdArg(ctx, ".fd", arg)
	if !ok {
		return
	}
	text, ok := r.h.FdChain(fd)
	if !ok {
		fmt.Fprintln(r.errw, text)
		r.failed = true
		return
	}
	fmt.Fprintln(r.out, text)
}

// fdArg reads a command's fd: a number or any Lua expression giving a
// number or a socket (.fd srv, .fd c.fd); false after saying what is wrong.
func (r *REPL) fdArg(ctx context.Context, cmd, arg string) (int, bool) {
	if fd, err := strconv.Atoi(arg); err == nil {
		return fd, true
	}
	cctx, end := r.begin(ctx)
	vals, err := r.h.EvalAs(cctx, "stdin", Owner, "return "+arg)
	end()
	if err != nil {
		fmt.Fprintln(r.errw, formatError(err))
		r.failed = true
		return 0, false
	}
	if len(vals) > 0 {
		if fd, ok := lua.SocketFD(vals[0]); ok {
			return fd, true
		}
	}
	fmt.Fprintf(r.errw, "%s: %s is not an fd or a socket\n", cmd, arg)
	r.failed = true
	return 0, false
}

// cmdLadder draws an fd's last TCP connection from the captures running.
func (r *REPL) cmdLadder(ctx context.Context, arg string) {
	fdText, svg, _ := strings.Cut(arg, " ")
	svg = strings.TrimSpace(svg)
	if fdText == "" || strings.Contains(svg, " ") {
		r.usage(".ladder")
		return
	}
	fd, ok := r.fdArg(ctx, ".ladder", fdText)
	if !ok {
		return
	}
	text, err := r.h.Ladder(fd, svg)
	if err != nil {
		fmt.Fprintf(r.errw, ".ladder: %v\n", sock.Message(err))
		r.failed = true
		return
	}
	fmt.Fprint(r.out, text)
	if svg != "" {
		fmt.Fprintf(r.out, "(written to %s too)\n", svg)
	}
}

func (r *REPL) cmdTrace(ctx context.Context, arg string) {
	var code, say string
	switch arg {
	case "on":
		code, say = "trace(true)", "trace on: every socket call is printed as it happens (.trace off stops)"
	case "hex":
		code, say = `trace("hex")`, "trace on, with hex dumps of the data (.trace off stops)"
	case "off":
		code, say = "trace(false)", "trace off"
	default:
		r.usage(".trace")
		return
	}
	if _, err := r.h.EvalAs(ctx, "stdin", Owner, code); err != nil {
		fmt.Fprintln(r.errw, formatError(err))
		r.failed = true
		return
	}
	fmt.Fprintln(r.out, say)
}

func (r *REPL) cmdCapture(ctx context.Context, arg string) {
	switch arg {
	case "":
		if c := r.h.Capturing(); c != nil {
			fmt.Fprintln(r.out, lua.CaptureString(c))
		} else {
			fmt.Fprintln(r.out, "capture off (.capture on starts it)")
		}
		return
	case "off":
		st, ok := r.h.StopCapture()
		if !ok {
			fmt.Fprintln(r.out, "capture off")
			return
		}
		fmt.Fprintln(r.out, lua.StatsLine(st))
		return
	}
	opts := wire.Options{}
	say := "capture on lo: the packets of this session's sockets appear as they pass (.capture off stops)"
	if arg != "on" {
		opts.Filter = arg
		say = fmt.Sprintf("capture on lo, filter %q: packets appear as they pass (.capture off stops)", arg)
	}
	if err := r.h.CaptureTo(r.h.Stderr(), opts); err != nil {
		fmt.Fprintln(r.errw, err) // "capture: ..." already
		r.failed = true
		return
	}
	fmt.Fprintln(r.out, say)
}

func (r *REPL) cmdTasks(ctx context.Context, arg string) {
	fmt.Fprint(r.out, renderTable(r.h.TaskRows(), "(no tasks running)"))
}

func (r *REPL) cmdKill(ctx context.Context, arg string) {
	id, err := strconv.Atoi(arg)
	if err != nil {
		r.usage(".kill")
		return
	}
	if err := r.h.KillTask(id); err != nil {
		fmt.Fprintln(r.errw, err)
		r.failed = true
		return
	}
	fmt.Fprintf(r.out, "killed task %d\n", id)
}

func (r *REPL) cmdLoad(ctx context.Context, arg string) {
	if arg == "" {
		r.usage(".load")
		return
	}
	path := arg
	if strings.HasPrefix(path, "~/") {
		if home, err := os.UserHomeDir(); err == nil {
			path = filepath.Join(home, path[2:])
		}
	}
	src, err := os.ReadFile(path)
	if err != nil {
		fmt.Fprintf(r.errw, ".load: cannot open %s: %v\n", arg, unwrapPathError(err))
		r.failed = true
		return
	}
	if len(src) > 0 && src[0] == '#' { // a #! line, as lua allows
		if i := strings.IndexByte(string(src), '\n'); i >= 0 {
			src = append([]byte("--"), src[i:]...)
		}
	}
	cctx, end := r.begin(ctx)
	vals, err := r.h.EvalAs(cctx, arg, Owner, string(src))
	var text string
	if err == nil && len(vals) > 0 {
		text = r.h.Pretty(cctx, vals)
	}
	interrupted := end()
	switch {
	case r.h.Exiting():
	case interrupted:
		r.sayInterrupted()
	case err != nil:
		fmt.Fprintln(r.errw, lua.FormatError(err))
		r.failed = true
	case text != "":
		fmt.Fprintln(r.out, text)
	}
}

func unwrapPathError(err error) error {
	if pe, ok := err.(*os.PathError); ok {
		return pe.Err
	}
	return err
}

func (r *REPL) cmdExit(ctx context.Context, arg string) { r.quit = true }
