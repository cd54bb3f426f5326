// Command sockplay is a TCP/UDP socket playground: Lua with real sockets.
//
//	sockplay                      the REPL (on a terminal)
//	sockplay script.lua [args]    run a script; arg[1..] are its arguments
//	sockplay -e 'code'            run a string
//	sockplay -i script.lua        the REPL after the script
//	sockplay -                    run standard input
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"sync/atomic"
	"syscall"

	"golang.org/x/term"

	"sockplay/lua"
	"sockplay/sock/wire"
)

const usage = `usage: sockplay [options] [script [args]]
Available options are:
  -e stat      execute string 'stat'
  -i           enter interactive mode after executing 'script'
  -            execute stdin and stop handling options
  --trace      print every socket call to stderr, strace-style
  --trace-hex  the same, with hex dumps of the data
  --capture[=FILTER]
               print the packets the script's sockets send and receive
               (or those a tcpdump FILTER keeps) to stderr, tcpdump-style,
               each with its fd and the call that sent it (needs root)
  --pcap FILE  write those packets to FILE as a pcap (tcpdump -r, Wireshark)
  --iface NAME capture on NAME instead of lo
  --version    show version information
  --help       show this help
With no script and a terminal, sockplay starts its REPL; .help there lists
its commands. The process keeps running while background tasks run.
`

func main() {
	stopProfile := startProfile()
	code := run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stopProfile()
	os.Exit(code)
}

type config struct {
	chunks      []string // -e code, in order
	interactive bool
	script      string // "" none, "-" stdin
	args        []string
	trace, hex  bool
	capture     bool   // --capture
	filter      string // --capture=FILTER
	pcap        string // --pcap FILE
	iface       string // --iface NAME
}

func parseArgs(args []string) (config, error, bool) {
	var c config
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "-e":
			if i+1 >= len(args) {
				return c, fmt.Errorf("'-e' needs argument"), false
			}
			i++
			c.chunks = append(c.chunks, args[i])
		case strings.HasPrefix(a, "-e") && len(a) > 2:
			c.chunks = append(c.chunks, a[2:])
		case a == "-i":
			c.interactive = true
		case a == "--trace":
			c.trace = true
		case a == "--trace-hex":
			c.trace, c.hex = true, true
		case a == "--capture":
			c.capture = true
		case strings.HasPrefix(a, "--capture="):
			c.capture, c.filter = true, a[len("--capture="):]
		case a == "--pcap" || a == "--iface":
			if i+1 >= len(args) {
				return c, fmt.Errorf("'%s' needs argument", a), false
			}
			i++
			if a == "--pcap" {
				c.pcap = args[i]
			} else {
				c.iface = args[i]
			}
		case strings.HasPrefix(a, "--pcap="):
			c.pcap = a[len("--pcap="):]
		case strings.HasPrefix(a, "--iface="):
			c.iface = a[len("--iface="):]
		case a == "--version", a == "-v":
			return c, nil, true
		case a == "--help", a == "-h":
			return c, errHelp, false
		case a == "--":
			if i+1 < len(args) {
				c.script, c.args = args[i+1], args[i+2:]
			}
			return c, nil, false
		case a == "-":
			c.script, c.args = "-", args[i+1:]
			return c, nil, false
		case strings.HasPrefix(a, "-"):
			return c, fmt.Errorf("unrecognized option '%s'", a), false
		default:
			c.script, c.args = a, args[i+1:]
			return c, nil, false
		}
	}
	return c, nil, false
}

var errHelp = fmt.Errorf("help")

func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	cfg, err, version := parseArgs(args)
	switch {
	case version:
		fmt.Fprintf(stdout, "sockplay %s (Lua 5.1, gopher-lua)\n", lua.Version)
		return 0
	case err == errHelp:
		fmt.Fprint(stdout, usage)
		return 0
	case err != nil:
		fmt.Fprintf(stderr, "sockplay: %v\n%s", err, usage)
		return 1
	}

	tty := isTerminal(stdin)
	script := cfg.script
	repl := cfg.interactive || (script == "" && len(cfg.chunks) == 0)

	// Ctrl-C ends every task and closes every fd; the REPL installs its own
	// handling. The first signal.Notify starts a thread (the runtime's
	// signal-mask thread), a third of a millisecond on a small VM: it runs
	// while the host is built, and is done before any Lua code runs.
	var sigs chan os.Signal
	sigsReady := make(chan struct{})
	if repl {
		close(sigsReady)
	} else {
		sigs = make(chan os.Signal, 1)
		go func() {
			signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
			close(sigsReady)
		}()
		defer func() {
			<-sigsReady
			signal.Stop(sigs)
		}()
	}

	// Said once the host has closed every socket and stopped the capture.
	var lastWords func()
	defer func() {
		if lastWords != nil {
			lastWords()
		}
	}()
	h := lua.New(lua.Options{Stdin: stdin, Stdout: stdout, Stderr: stderr})
	defer h.Close()
	if cfg.trace {
		h.TraceTo(h.Stderr(), cfg.hex)
	}
	if cfg.capture || cfg.pcap != "" {
		words, err := startCapture(h, cfg, repl)
		if err != nil {
			fmt.Fprintf(stderr, "sockplay: %v\n", err)
			return 1
		}
		lastWords = words
	}
	if script == "" && len(cfg.chunks) == 0 && !cfg.interactive && !tty {
		// Like lua: no script and no terminal means the program is stdin,
		// read line by line so that continuation and errors work as at a prompt.
		return runREPL(h, stdin, stdout, stderr, false)
	}
	h.SetArgs("sockplay", script, cfg.args)
	if script != "" && script != "-" {
		h.SetScriptPath(script)
	}

	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	var interrupted atomic.Bool // set by the signal goroutine
	<-sigsReady
	if !repl {
		go func() {
			select {
			case <-sigs:
				interrupted.Store(true)
				h.Interrupt()
			case <-ctx.Done():
			}
		}()
	}

	for i, code := range cfg.chunks {
		if _, err := h.Eval(ctx, fmt.Sprintf("(command line %d)", i+1), code); err != nil {
			if h.Exiting() {
				h.Wait(nil)
				return h.ExitCode()
			}
			if interrupted.Load() {
				fmt.Fprintln(stderr, "sockplay: interrupted")
				return 130
			}
			fmt.Fprintf(stderr, "sockplay: %s\n", lua.FormatError(err))
			return 1
		}
	}
	if script != "" {
		if err := h.RunFile(ctx, script); err != nil {
			if h.Exiting() {
				return h.ExitCode()
			}
			if interrupted.Load() {
				fmt.Fprintln(stderr, "sockplay: interrupted")
				return 130
			}
			fmt.Fprintf(stderr, "sockplay: %s\n", lua.FormatError(err))
			return 1
		}
	}
	if repl {
		return runREPL(h, stdin, stdout, stderr, tty)
	}
	// The process lives while tasks run, as a node server does.
	h.Wait(nil)
	if interrupted.Load() {
		fmt.Fprintln(stderr, "sockplay: interrupted")
		return 130
	}
	return h.ExitCode()
}

// startCapture starts --capture and --pcap; what it returns prints the
// capture's counters once the run is over.
func startCapture(h *lua.Host, cfg config, repl bool) (func(), error) {
	opts := wire.Options{Iface: cfg.iface, Filter: cfg.filter}
	var file *os.File
	if cfg.pcap != "" {
		f, err := os.Create(cfg.pcap)
		if err != nil {
			return nil, fmt.Errorf("--pcap: %w", pathError(err))
		}
		file, opts.Pcap = f, f
	}
	var c *wire.Capture
	var err error
	if cfg.capture {
		err = h.CaptureTo(h.Stderr(), opts)
		c = h.Capturing()
	} else {
		if !repl {
			opts.Keep = -1 // nobody will look at them: a pcap file is all
		}
		c, err = h.OpenCapture(opts)
	}
	if err != nil {
		if file != nil {
			file.Close()
			os.Remove(cfg.pcap)
		}
		return nil, err
	}
	return func() {
		c.Stop()
		st := c.Stats()
		if cfg.capture {
			fmt.Fprintln(h.Stderr(), lua.StatsLine(st))
		}
		if file != nil {
			if err := file.Close(); err != nil {
				fmt.Fprintf(h.Stderr(), "sockplay: --pcap: %v\n", err)
			} else if !cfg.capture {
				fmt.Fprintf(h.Stderr(), "pcap: %d packets written to %s, %d dropped by the kernel\n", st.Kept, cfg.pcap, st.Dropped)
			}
		}
	}, nil
}

func pathError(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return fmt.Errorf("%s: %w", pe.Path, pe.Err)
	}
	return err
}

func isTerminal(r io.Reader) bool {
	f, ok := r.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}
