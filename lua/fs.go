package lua

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"syscall"

	glua "github.com/yuin/gopher-lua"
	"golang.org/x/sys/unix"

	"sockplay/sock"
)

// The fs module: the few file system calls a server script needs (stat,
// realpath, a directory listing, reading and writing a file), with the same
// error rule as sock: a mistake in the script raises, a failure of the
// world (ENOENT, EACCES ...) returns nil, message, code.
//
// stat, realpath and list are metadata calls that take microseconds, so
// they run under the interpreter lock; read and write move data and let
// the other tasks run meanwhile.

func openFs(h *Host) {
	h.newModule("fs", "files: stat, lstat, realpath, list, read, write", []fn{
		{"stat", h.fsStat, "fs.stat(path) -> {type, size, mtime, mode, executable} | nil, msg, code  -- stat(2), following symlinks; type is \"file\", \"dir\" or \"other\", mtime in seconds (with fraction)"},
		{"lstat", h.fsLstat, "fs.lstat(path) -> {type, size, mtime, mode, target} | nil, msg, code  -- like stat, but a symlink is described itself (type \"symlink\", target its text)"},
		{"realpath", h.fsRealpath, "fs.realpath(path) -> path | nil, msg, code  -- the absolute path with every symlink, . and .. resolved (realpath(3))"},
		{"list", h.fsList, "fs.list(dir) -> {{name, type, size, mtime}, ...} | nil, msg, code  -- a directory's entries sorted by name, symlinks followed"},
		{"read", h.fsRead, "fs.read(path [, offset [, n]]) -> data | nil, msg, code  -- a whole file, or n bytes from offset (\"\" past the end)"},
		{"write", h.fsWrite, "fs.write(path, data) -> true | nil, msg, code  -- create or replace a file (mode 0644) with data"},
	})
}

// fsError turns an error from the os package into the sock error shape:
// code ENOENT, message "no such file or directory (/the/path)".
func fsError(op string, err error) error {
	var pe *fs.PathError
	var le *os.LinkError
	path := ""
	switch {
	case errors.As(err, &pe):
		path, err = pe.Path, pe.Err
	case errors.As(err, &le):
		path, err = le.New, le.Err
	}
	var errno syscall.Errno
	if errors.As(err, &errno) {
		msg := errno.Error()
		if path != "" {
			msg += " (" + path + ")"
		}
		return &sock.Error{Op: op, Code: unix.ErrnoName(errno), Msg: msg, Errno: errno}
	}
	return &sock.Error{Op: op, Code: "EIO", Msg: err.Error()}
}

// fileType names what a FileMode describes.
func fileType(m fs.FileMode) string {
	switch {
	case m.IsRegular():
		return "file"
	case m.IsDir():
		return "dir"
	case m&fs.ModeSymlink != 0:
		return "symlink"
	}
	return "other"
}

func mtimeSeconds(fi fs.FileInfo) float64 {
	return float64(fi.ModTime().UnixNano()) / 1e9
}

func statTable(L *glua.LState, fi fs.FileInfo) *glua.LTable {
	t := L.CreateTable(0, 6)
	t.RawSetString("type", glua.LString(fileType(fi.Mode())))
	t.RawSetString("size", glua.LNumber(fi.Size()))
	t.RawSetString("mtime", glua.LNumber(mtimeSeconds(fi)))
	t.RawSetString("mode", glua.LNumber(fi.Mode().Perm()))
	t.RawSetString("executable", glua.LBool(fi.Mode().IsRegular() && fi.Mode().Perm()&0o111 != 0))
	return t
}

func (h *Host) fsStat(L *glua.LState) int {
	path := L.CheckString(1)
	fi, err := os.Stat(path)
	if err != nil {
		return pushFail(L, fsError("stat", err))
	}
	L.Push(statTable(L, fi))
	return 1
}

func (h *Host) fsLstat(L *glua.LState) int {
	path := L.CheckString(1)
	fi, err := os.Lstat(path)
	if err != nil {
		return pushFail(L, fsError("lstat", err))
	}
	t := statTable(L, fi)
	if fi.Mode()&fs.ModeSymlink != 0 {
		if target, err := os.Readlink(path); err == nil {
			t.RawSetString("target", glua.LString(target))
		}
	}
	L.Push(t)
	return 1
}

func (h *Host) fsRealpath(L *glua.LState) int {
	path := L.CheckString(1)
	abs, err := filepath.Abs(path)
	if err == nil {
		abs, err = filepath.EvalSymlinks(abs)
	}
	if err != nil {
		return pushFail(L, fsError("realpath", err))
	}
	L.Push(glua.LString(abs))
	return 1
}

func (h *Host) fsList(L *glua.LState) int {
	dir := L.CheckString(1)
	ents, err := os.ReadDir(dir)
	if err != nil {
		return pushFail(L, fsError("list", err))
	}
	sort.Slice(ents, func(i, j int) bool { return ents[i].Name() < ents[j].Name() })
	out := L.CreateTable(len(ents), 0)
	for _, e := range ents {
		// Stat follows a symlink to what it names; a dangling one is
		// listed as a symlink.
		fi, err := os.Stat(filepath.Join(dir, e.Name()))
		if err != nil {
			if fi, err = e.Info(); err != nil {
				continue // removed while we listed
			}
		}
		t := statTable(L, fi)
		t.RawSetString("name", glua.LString(e.Name()))
		out.Append(t)
	}
	L.Push(out)
	return 1
}

func (h *Host) fsRead(L *glua.LState) int {
	path := L.CheckString(1)
	offset := L.OptInt64(2, 0)
	n := L.OptInt64(3, -1)
	if offset < 0 {
		L.ArgError(2, fmt.Sprintf("offset %d is negative", offset))
	}
	if L.GetTop() >= 3 && n < 0 {
		L.ArgError(3, fmt.Sprintf("size %d is negative", n))
	}
	var data []byte
	var err error
	h.blocking(L, "read "+path, func(context.Context) {
		data, err = readFile(path, offset, n)
	})
	if err != nil {
		return pushFail(L, fsError("read", err))
	}
	L.Push(glua.LString(data))
	return 1
}

// readFile reads n bytes of path from offset, or all of it to the end when
// n is negative.
func readFile(path string, offset, n int64) ([]byte, error) {
	if offset == 0 && n < 0 {
		return os.ReadFile(path)
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if n < 0 {
		if _, err := f.Seek(offset, io.SeekStart); err != nil {
			return nil, err
		}
		return io.ReadAll(f)
	}
	buf := make([]byte, n)
	got, err := f.ReadAt(buf, offset)
	if err == io.EOF {
		err = nil
	}
	return buf[:got], err
}

func (h *Host) fsWrite(L *glua.LState) int {
	path := L.CheckString(1)
	data := L.CheckString(2)
	var err error
	h.blocking(L, "write "+path, func(context.Context) {
		err = os.WriteFile(path, []byte(data), 0o644)
	})
	if err != nil {
		return pushFail(L, fsError("write", err))
	}
	L.Push(glua.LTrue)
	return 1
}
