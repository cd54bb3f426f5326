package sock

import (
	"errors"
	"fmt"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// Error is a failure of the world: the kernel said no, the peer went away,
// time ran out. Code is the errno's name (ECONNREFUSED) or one of the
// pseudo-codes EOF, ETIMEDOUT and ECANCELED; Msg is the text a user reads.
type Error struct {
	Op    string        // the call that failed: "connect", "read" ...
	Code  string        // "ECONNREFUSED"
	Msg   string        // "connection refused"
	Errno syscall.Errno // 0 when the failure is not a kernel errno
}

func (e *Error) Error() string {
	if e.Op == "" {
		return e.Msg
	}
	return e.Op + ": " + e.Msg
}

// Is lets errors.Is(err, unix.ECONNREFUSED) work on an *Error.
func (e *Error) Is(target error) bool {
	if errno, ok := target.(syscall.Errno); ok {
		return e.Errno != 0 && e.Errno == errno
	}
	t, ok := target.(*Error)
	return ok && t.Code == e.Code
}

// Sentinels for the pseudo-codes, to compare with errors.Is.
var (
	ErrEOF      = &Error{Code: "EOF", Msg: "end of stream"}
	ErrTimeout  = &Error{Code: "ETIMEDOUT", Msg: "timed out", Errno: unix.ETIMEDOUT}
	ErrCanceled = &Error{Code: "ECANCELED", Msg: "interrupted", Errno: unix.ECANCELED}
	ErrClosed   = &Error{Code: "EBADF", Msg: "bad file descriptor (closed)", Errno: unix.EBADF}
)

// errnoError turns an errno into an *Error whose text is the kernel's
// strerror in lower case, as Go prints it.
func errnoError(op string, errno syscall.Errno) *Error {
	return &Error{Op: op, Code: unix.ErrnoName(errno), Msg: errno.Error(), Errno: errno}
}

// wrap turns any error from a system call or the poller into an *Error.
func wrap(op string, err error) error {
	if err == nil {
		return nil
	}
	var se *Error
	if errors.As(err, &se) {
		if se.Op == "" {
			c := *se
			c.Op = op
			return &c
		}
		return se
	}
	var errno syscall.Errno
	if errors.As(err, &errno) {
		if errno == unix.EAGAIN && op == "connect" {
			// A full local port range shows up as EAGAIN on connect(2).
			return &Error{Op: op, Code: "EADDRNOTAVAIL", Msg: "no free local port", Errno: unix.EADDRNOTAVAIL}
		}
		return errnoError(op, errno)
	}
	return &Error{Op: op, Code: "EIO", Msg: strings.TrimPrefix(err.Error(), op+": ")}
}

// withOp copies a sentinel with the operation filled in.
func withOp(op string, e *Error) *Error {
	c := *e
	c.Op = op
	return &c
}

// Code returns the errno-style code of err ("ECONNREFUSED", "EOF" ...), or
// "" for nil.
func Code(err error) string {
	if err == nil {
		return ""
	}
	var se *Error
	if errors.As(err, &se) {
		return se.Code
	}
	var errno syscall.Errno
	if errors.As(err, &errno) {
		return unix.ErrnoName(errno)
	}
	return "EIO"
}

// Message returns the user-facing text of err without the operation prefix.
func Message(err error) string {
	var se *Error
	if errors.As(err, &se) {
		return se.Msg
	}
	return err.Error()
}

// argError is for a caller's mistake (a negative size, an unknown option).
func argError(op, format string, a ...any) error {
	return &Error{Op: op, Code: "EINVAL", Msg: fmt.Sprintf(format, a...), Errno: unix.EINVAL}
}
