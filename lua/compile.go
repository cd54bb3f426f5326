package lua

import (
	"fmt"
	"io"
	"os"
	"strings"

	glua "github.com/yuin/gopher-lua"
	"github.com/yuin/gopher-lua/ast"
	"github.com/yuin/gopher-lua/parse"
)

// Every chunk sockplay runs is compiled here rather than by gopher-lua's
// Load, to put right how gopher-lua compiles a multiple assignment: it
// stores each value in its local as soon as it is computed, so a later
// value that reads that local sees the new one (a, b = b, a leaves both
// equal; gopher-lua issue #440). Lua evaluates every value first. The
// chunk's syntax tree is rewritten so that
//
//	a, b = b, a
//
// compiles as
//
//	do local (1), (2) = b, a; a, b = (1), (2) end
//
// (names no script can write), which gopher-lua compiles right. LuaSocket's
// own Lua modules depend on this (mime.wrap(), socket.choose).

// loadLua compiles a chunk as LState.Load does.
func loadLua(L *glua.LState, r io.Reader, name string) (*glua.LFunction, error) {
	chunk, err := parse.Parse(r, name)
	if err != nil {
		return nil, &glua.ApiError{Type: glua.ApiErrorSyntax, Object: glua.LString(err.Error()), Cause: err}
	}
	fixAssignments(chunk)
	proto, err := glua.Compile(chunk, name)
	if err != nil {
		return nil, &glua.ApiError{Type: glua.ApiErrorSyntax, Object: glua.LString(err.Error()), Cause: err}
	}
	return L.NewFunctionFromProto(proto), nil
}

// loadLuaFile compiles a file as LState.LoadFile does.
func loadLuaFile(L *glua.LState, path string) (*glua.LFunction, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, &glua.ApiError{Type: glua.ApiErrorFile, Object: glua.LString(err.Error()), Cause: err}
	}
	defer f.Close()
	return loadLua(L, f, path)
}

// fixAssignments rewrites every multiple assignment in stmts, in nested
// blocks and functions too.
func fixAssignments(stmts []ast.Stmt) {
	for i, s := range stmts {
		switch s := s.(type) {
		case *ast.AssignStmt:
			walkExprs(s.Lhs...)
			walkExprs(s.Rhs...)
			if len(s.Lhs) > 1 {
				stmts[i] = viaTemporaries(s)
			}
		case *ast.LocalAssignStmt:
			walkExprs(s.Exprs...)
		case *ast.FuncCallStmt:
			walkExprs(s.Expr)
		case *ast.DoBlockStmt:
			fixAssignments(s.Stmts)
		case *ast.WhileStmt:
			walkExprs(s.Condition)
			fixAssignments(s.Stmts)
		case *ast.RepeatStmt:
			walkExprs(s.Condition)
			fixAssignments(s.Stmts)
		case *ast.IfStmt:
			walkExprs(s.Condition)
			fixAssignments(s.Then)
			fixAssignments(s.Else)
		case *ast.NumberForStmt:
			walkExprs(s.Init, s.Limit, s.Step)
			fixAssignments(s.Stmts)
		case *ast.GenericForStmt:
			walkExprs(s.Exprs...)
			fixAssignments(s.Stmts)
		case *ast.FuncDefStmt:
			walkExprs(s.Name.Func, s.Name.Receiver, s.Func)
		case *ast.ReturnStmt:
			walkExprs(s.Exprs...)
		}
	}
}

// walkExprs finds the function bodies inside expressions.
func walkExprs(exprs ...ast.Expr) {
	for _, e := range exprs {
		switch e := e.(type) {
		case *ast.FunctionExpr:
			fixAssignments(e.Stmts)
		case *ast.AttrGetExpr:
			walkExprs(e.Object, e.Key)
		case *ast.TableExpr:
			for _, f := range e.Fields {
				walkExprs(f.Key, f.Value)
			}
		case *ast.FuncCallExpr:
			walkExprs(e.Func, e.Receiver)
			walkExprs(e.Args...)
		case *ast.LogicalOpExpr:
			walkExprs(e.Lhs, e.Rhs)
		case *ast.RelationalOpExpr:
			walkExprs(e.Lhs, e.Rhs)
		case *ast.StringConcatOpExpr:
			walkExprs(e.Lhs, e.Rhs)
		case *ast.ArithmeticOpExpr:
			walkExprs(e.Lhs, e.Rhs)
		case *ast.UnaryMinusOpExpr:
			walkExprs(e.Expr)
		case *ast.UnaryNotOpExpr:
			walkExprs(e.Expr)
		case *ast.UnaryLenOpExpr:
			walkExprs(e.Expr)
		}
	}
}

// viaTemporaries turns a, b = x, y into do local (1), (2) = x, y; a, b =
// (1), (2) end, keeping the statement's lines for error messages.
func viaTemporaries(s *ast.AssignStmt) ast.Stmt {
	n := max(len(s.Lhs), len(s.Rhs))
	names := make([]string, n)
	temps := make([]ast.Expr, len(s.Lhs))
	for i := range names {
		names[i] = fmt.Sprintf("(%d)", i+1)
		if i < len(s.Lhs) {
			id := &ast.IdentExpr{Value: names[i]}
			id.SetLine(s.Line())
			id.SetLastLine(s.LastLine())
			temps[i] = id
		}
	}
	local := &ast.LocalAssignStmt{Names: names, Exprs: s.Rhs}
	assign := &ast.AssignStmt{Lhs: s.Lhs, Rhs: temps}
	block := &ast.DoBlockStmt{Stmts: []ast.Stmt{local, assign}}
	for _, st := range []ast.Stmt{local, assign, block} {
		st.SetLine(s.Line())
		st.SetLastLine(s.LastLine())
	}
	return block
}

// openLoaders replaces the base library's compilers (load, loadstring,
// loadfile, dofile) with ones that compile through loadLua.
func (h *Host) openLoaders() {
	result := func(L *glua.LState, fn *glua.LFunction, err error) int {
		if err != nil {
			L.Push(glua.LNil)
			L.Push(glua.LString(errorMessage(err)))
			return 2
		}
		L.Push(fn)
		return 1
	}
	h.setGlobals([]fn{
		{"loadstring", func(L *glua.LState) int {
			src := L.CheckString(1)
			fn, err := loadLua(L, strings.NewReader(src), L.OptString(2, "<string>"))
			return result(L, fn, err)
		}, "loadstring(s [, name]) -> fn | nil, err  -- compile a chunk"},
		{"load", func(L *glua.LState) int {
			piece := L.CheckFunction(1)
			name := L.OptString(2, "?")
			var src strings.Builder
			for {
				L.Push(piece)
				L.Call(0, 1)
				v := L.Get(-1)
				L.Pop(1)
				if s, ok := v.(glua.LString); ok && s != "" {
					src.WriteString(string(s))
					continue
				}
				if v != glua.LNil && v != glua.LString("") {
					L.Push(glua.LNil)
					L.Push(glua.LString("reader function must return a string"))
					return 2
				}
				break
			}
			fn, err := loadLua(L, strings.NewReader(src.String()), name)
			return result(L, fn, err)
		}, "load(fn [, name]) -> fn | nil, err  -- compile a chunk from the pieces fn returns"},
		{"loadfile", func(L *glua.LState) int {
			if L.GetTop() < 1 || L.Get(1) == glua.LNil {
				fn, err := loadLua(L, h.stdin, "<stdin>")
				return result(L, fn, err)
			}
			fn, err := loadLuaFile(L, L.CheckString(1))
			return result(L, fn, err)
		}, "loadfile([file]) -> fn | nil, err  -- compile a file (standard input without one)"},
		{"dofile", func(L *glua.LState) int {
			var fn *glua.LFunction
			var err error
			if L.GetTop() < 1 || L.Get(1) == glua.LNil {
				fn, err = loadLua(L, h.stdin, "<stdin>")
			} else {
				fn, err = loadLuaFile(L, L.CheckString(1))
			}
			if err != nil {
				L.RaiseError("%s", errorMessage(err))
			}
			top := L.GetTop()
			L.Push(fn)
			L.Call(0, glua.MultRet)
			return L.GetTop() - top
		}, "dofile([file]) -> ...  -- run a file and return what it returns"},
	})
}
