// Package repl is sockplay's read-eval-print loop, without a terminal. It
// reads lines from a LineReader, decides whether a chunk is complete or
// needs another line, evaluates it on the host as a task that Ctrl-C can
// cancel, prints the results with the host's pretty printer, and runs the
// dot commands (.fds, .watch, .tour ...).
//
// cmd/sockplay adds the terminal: liner, history, the SIGINT handler, and
// background output above the prompt. Tests drive the same loop with a
// scripted LineReader and compare transcripts.
package repl

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	glua "github.com/yuin/gopher-lua"
	"github.com/yuin/gopher-lua/ast"
	"github.com/yuin/gopher-lua/parse"

	"sockplay/lua"
)

// LineReader gives the REPL its input, one line at a time.
type LineReader interface {
	// ReadLine shows prompt (when a person is typing) and returns the next
	// line without its newline. io.EOF ends the session; ErrInterrupted
	// means Ctrl-C was pressed at the prompt.
	ReadLine(prompt string) (string, error)
}

// ErrInterrupted is what a LineReader returns for Ctrl-C at the prompt.
var ErrInterrupted = errors.New("interrupted")

// Screen is what a real terminal adds for .watch and .tour; nil when there
// is none.
type Screen interface {
	// WaitKey waits up to d for a key press and consumes it; it returns
	// early with false when ctx ends.
	WaitKey(ctx context.Context, d time.Duration) bool
	// Size is the terminal's size in rows and columns.
	Size() (rows, cols int)
	// Hold keeps background output back until release is called, so that
	// .watch can redraw in place.
	Hold() (release func())
}

// Options set how the loop talks to a person.
type Options struct {
	// Interactive: a person types at a terminal. The banner, prompts and
	// the pauses of .tour depend on it.
	Interactive bool
	Screen      Screen
	// History is told every line typed as code or command.
	History func(line string)
}

// Prompts.
const (
	Prompt         = "> "
	ContinuePrompt = ">> "
)

// Owner is the label sockets opened at the prompt carry in the table.
const Owner = "repl"

// REPL is one session.
type REPL struct {
	h    *lua.Host
	in   LineReader
	opts Options
	out  io.Writer
	errw io.Writer

	mu          sync.Mutex
	cancel      context.CancelFunc // the running chunk's; nil at the prompt
	interrupted bool               // Interrupt cancelled the running chunk

	failed          bool // some chunk failed
	lastInterrupted bool // Ctrl-C stopped the last chunk
	quit            bool // .exit
}

// New makes a session on h reading from in. Output goes through the host's
// consoles, so it is ordered with everything the tasks print.
func New(h *lua.Host, in LineReader, opts Options) *REPL {
	return &REPL{h: h, in: in, opts: opts, out: h.Stdout(), errw: h.Stderr()}
}

// Banner is the one line a terminal session starts with.
func Banner() string {
	return fmt.Sprintf("sockplay %s: Lua 5.1 with real sockets. .tour walks you through, .help lists commands, Ctrl-D quits.", lua.Version)
}

// Run reads and evaluates until the input ends, .exit, os.exit, or ctx is
// cancelled (130). The status is os.exit's code, else 1 when a chunk or a
// background task failed, else 0. Without a person at the prompt, the end
// of the input waits for the background tasks, as a script does.
func (r *REPL) Run(ctx context.Context) int {
	if r.opts.Interactive {
		fmt.Fprintln(r.out, Banner())
	}
	for !r.quit {
		src, err := r.readChunk()
		if ctx.Err() != nil {
			return 130
		}
		if errors.Is(err, ErrInterrupted) {
			continue
		}
		if err != nil {
			if r.opts.Interactive {
				fmt.Fprintln(r.out)
			} else if !errors.Is(err, io.EOF) {
				fmt.Fprintf(r.errw, "reading input: %v\n", err)
				r.failed = true
			}
			break
		}
		r.Execute(ctx, src)
		if r.h.Exiting() {
			return r.h.ExitCode()
		}
		if ctx.Err() != nil {
			return 130
		}
	}
	if !r.opts.Interactive && !r.quit {
		r.h.Wait(ctx)
		if ctx.Err() != nil {
			return 130
		}
	}
	if r.h.Exiting() {
		return r.h.ExitCode()
	}
	if code := r.h.ExitCode(); code != 0 {
		return code
	}
	if r.failed {
		return 1
	}
	return 0
}

// Failed reports whether some chunk or command failed.
func (r *REPL) Failed() bool { return r.failed }

// readChunk reads lines until they make a chunk that compiles, or that
// fails for a reason more input cannot fix.
func (r *REPL) readChunk() (string, error) {
	var lines []string
	for {
		prompt := Prompt
		if len(lines) > 0 {
			prompt = ContinuePrompt
		}
		line, err := r.in.ReadLine(prompt)
		if err != nil {
			if errors.Is(err, io.EOF) && len(lines) > 0 {
				// Evaluate what there is: the error says what is missing.
				return strings.Join(lines, "\n"), nil
			}
			return "", err
		}
		if r.opts.History != nil && strings.TrimSpace(line) != "" {
			r.opts.History(line)
		}
		if len(lines) == 0 && isCommand(line) {
			return line, nil
		}
		lines = append(lines, line)
		src := strings.Join(lines, "\n")
		if strings.TrimSpace(src) == "" {
			return "", nil
		}
		if f := classify(src); f.kind != incomplete {
			return src, nil
		}
	}
}

// Execute runs one complete chunk or dot command as if it was typed.
func (r *REPL) Execute(ctx context.Context, src string) {
	defer func() {
		// No Go panic reaches a user: say what broke and go on.
		if p := recover(); p != nil {
			fmt.Fprintf(r.errw, "internal error: %v\n", p)
			r.failed = true
		}
	}()
	if strings.TrimSpace(src) == "" {
		return
	}
	if isCommand(src) {
		r.command(ctx, strings.TrimSpace(src))
		return
	}
	r.eval(ctx, src)
}

// Interrupt cancels the running chunk or command (Ctrl-C) and reports
// whether one was running. Background tasks go on.
func (r *REPL) Interrupt() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.cancel == nil {
		return false
	}
	r.interrupted = true
	r.cancel()
	return true
}

// running reports whether a chunk or command is running.
func (r *REPL) running() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.cancel != nil
}

// begin gives a chunk its cancellable context; end reports whether
// Interrupt cancelled it.
func (r *REPL) begin(parent context.Context) (ctx context.Context, end func() bool) {
	ctx, cancel := context.WithCancel(parent)
	r.mu.Lock()
	r.cancel, r.interrupted = cancel, false
	r.mu.Unlock()
	return ctx, func() bool {
		r.mu.Lock()
		r.cancel = nil
		interrupted := r.interrupted
		r.mu.Unlock()
		cancel()
		return interrupted
	}
}

// eval compiles src as an expression (so that its values print) or else
// as statements, runs it, and prints the results or the error.
func (r *REPL) eval(ctx context.Context, src string) {
	f := classify(src)
	if f.kind == invalid || f.kind == incomplete {
		fmt.Fprintln(r.errw, f.err)
		r.failed = true
		return
	}
	cctx, end := r.begin(ctx)
	vals, err := r.h.EvalAs(cctx, "stdin", Owner, f.code)
	var text string
	if err == nil && len(vals) > 0 {
		text = r.h.Pretty(cctx, vals)
	}
	interrupted := end()
	r.lastInterrupted = interrupted
	switch {
	case r.h.Exiting():
	case interrupted || (err != nil && ctx.Err() != nil):
		r.sayInterrupted()
	case err != nil:
		fmt.Fprintln(r.errw, r.formatError(ctx, err))
		r.failed = true
	case text != "":
		fmt.Fprintln(r.out, text)
	}
}

// sayInterrupted reports a chunk Ctrl-C stopped. At a terminal the ^C the
// terminal echoed ends the line first.
func (r *REPL) sayInterrupted() {
	if r.opts.Interactive {
		fmt.Fprintln(r.errw)
	}
	fmt.Fprintln(r.errw, "interrupted")
}

type formKind int

const (
	expression formKind = iota
	statement
	incomplete
	invalid
)

// form is how a chunk compiles: the code to run, or why it cannot.
type form struct {
	kind formKind
	code string
	err  string // for incomplete and invalid: the error as a user reads it
}

// classify decides between an expression (1 + 1, f(), =x), statements, a
// chunk that wants more lines (gopher-lua's "at EOF" errors: an open
// function, table, long string or comment), and a real syntax error.
func classify(src string) form {
	if rest, ok := strings.CutPrefix(strings.TrimLeft(src, " \t"), "="); ok {
		src = rest // Lua 5.1's =expr
		if _, err := parse.Parse(strings.NewReader("return "+src), "stdin"); err != nil {
			return syntaxForm(src, err, 7)
		}
		return form{kind: expression, code: expressionCode(src)}
	}
	_, exprErr := parse.Parse(strings.NewReader("return "+src), "stdin")
	if exprErr == nil {
		return form{kind: expression, code: expressionCode(src)}
	}
	stmts, stmtErr := parse.Parse(strings.NewReader(src), "stdin")
	if stmtErr == nil {
		// s = sock.udp(); s:close() shows what the last call returned.
		if _, call := stmts[len(stmts)-1].(*ast.FuncCallStmt); call && len(stmts) > 1 {
			if code, ok := trailingExpression(src); ok {
				return form{kind: expression, code: code}
			}
		}
		return form{kind: statement, code: globalizeLocal(src, stmts)}
	}
	if code, ok := trailingExpression(src); ok {
		return form{kind: expression, code: code}
	}
	se, sok := stmtErr.(*parse.Error)
	ee, eok := exprErr.(*parse.Error)
	if sok && eok {
		// The parse that got further is closer to what was meant: "1 +"
		// is an unfinished expression, not a statement gone wrong.
		sAt, eAt := position(se, 0), position(ee, 7)
		if eAt.after(sAt) {
			return syntaxForm(src, exprErr, 7)
		}
	}
	return syntaxForm(src, stmtErr, 0)
}

// expressionCode returns src's values without making a call in it a tail
// call, which would drop the called function from the traceback. The
// parenthesis goes on a line of its own in case src ends in a comment.
func expressionCode(src string) string {
	code := "return (function(...) return ... end)(" + strings.TrimRight(src, "; \t") + "\n)"
	if _, err := parse.Parse(strings.NewReader(code), "stdin"); err != nil {
		return "return " + src
	}
	return code
}

// trailingExpression handles statements followed by an expression, as in
// `t = {}; t.self = t; t`: Lua rejects it, but at a prompt the value of
// the last part is what was asked for. It splits at the last ; or newline
// after which an expression stands, and returns the statements followed
// by returning that expression.
func trailingExpression(src string) (string, bool) {
	for i, tries := len(src)-1, 0; i > 0 && tries < 20; i-- {
		if src[i] != ';' && src[i] != '\n' {
			continue
		}
		tries++
		head, tail := src[:i+1], src[i+1:]
		if strings.TrimSpace(tail) == "" || strings.TrimSpace(strings.TrimRight(head, ";\n")) == "" {
			continue
		}
		if _, err := parse.Parse(strings.NewReader("return "+tail), "stdin"); err != nil {
			continue
		}
		if _, err := parse.Parse(strings.NewReader(head), "stdin"); err != nil {
			continue
		}
		return head + " " + expressionCode(tail), true
	}
	return "", false
}

type pos struct{ line, col int }

func (a pos) after(b pos) bool { return a.line > b.line || a.line == b.line && a.col > b.col }

// position is where a parse error is; "at EOF" is after everything.
// shift is the length of a "return " put before the first line.
func position(e *parse.Error, shift int) pos {
	if e.Pos.Line == parse.EOF {
		return pos{1 << 30, 0}
	}
	col := e.Pos.Column
	if e.Pos.Line == 1 {
		col -= shift
	}
	return pos{e.Pos.Line, col}
}

func syntaxForm(src string, err error, shift int) form {
	pe, ok := err.(*parse.Error)
	if !ok {
		return form{kind: invalid, err: "stdin: " + strings.TrimSpace(err.Error())}
	}
	lines := strings.Count(src, "\n") + 1
	if pe.Pos.Line == parse.EOF {
		// A short string cannot go on past a newline unless the newline is
		// escaped: asking for more lines would only postpone the error.
		if pe.Message == "unterminated string" && !strings.HasSuffix(src, `\`) {
			return form{kind: invalid, err: fmt.Sprintf("stdin:%d: unfinished string", lines)}
		}
		return form{kind: incomplete, err: fmt.Sprintf("stdin:%d: %s near <eof>", lines, pe.Message)}
	}
	msg := pe.Message
	if msg == "parse error" {
		msg = "syntax error"
	}
	tok := pe.Token
	if tok == "" {
		return form{kind: invalid, err: fmt.Sprintf("stdin:%d: %s", pe.Pos.Line, msg)}
	}
	return form{kind: invalid, err: fmt.Sprintf("stdin:%d: %s near '%s'", pe.Pos.Line, msg, tok)}
}

// globalizeLocal turns a chunk that is one local declaration into the
// same assignment to globals. At a prompt every line is a chunk of its
// own, so `local s = sock.tcp()` would be gone by the next line; people
// coming from Node or IPython expect s to stay.
func globalizeLocal(src string, stmts []ast.Stmt) string {
	if len(stmts) != 1 {
		return src
	}
	la, ok := stmts[0].(*ast.LocalAssignStmt)
	if !ok {
		return src
	}
	rest, ok := strings.CutPrefix(strings.TrimLeft(src, " \t"), "local")
	if !ok || rest == "" || (rest[0] != ' ' && rest[0] != '\t') {
		return src
	}
	if len(la.Exprs) == 0 {
		return strings.Join(la.Names, ", ") + " = nil"
	}
	if _, err := parse.Parse(strings.NewReader(rest), "stdin"); err != nil {
		return src
	}
	return strings.TrimLeft(rest, " \t")
}

// formatError is a runtime error as the prompt shows it: the message, and
// the traceback only when the error came from inside a function. An error
// value that is not a string (error({code = 1})) is shown pretty.
func (r *REPL) formatError(ctx context.Context, err error) string {
	var ae *glua.ApiError
	if errors.As(err, &ae) && ae.Object != nil {
		switch ae.Object.(type) {
		case glua.LString, glua.LNumber:
		default:
			return "error: " + r.h.Pretty(ctx, []glua.LValue{ae.Object})
		}
	}
	return formatError(err)
}

func formatError(err error) string {
	msg := lua.FormatError(err)
	head, tb, ok := strings.Cut(msg, "\nstack traceback:")
	if !ok {
		return msg
	}
	for _, l := range strings.Split(tb, "\n") {
		l = strings.TrimSpace(l)
		if l != "" && !strings.HasPrefix(l, "[G]") && !strings.HasPrefix(l, "(tailcall)") && !strings.HasSuffix(l, "in main chunk") {
			return msg
		}
	}
	return head
}
