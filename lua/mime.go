package lua

import (
	glua "github.com/yuin/gopher-lua"
)

// The mime.core module: the low-level filters of LuaSocket's mime module,
// so that its mime.lua (and socket.smtp, which encodes with it) runs on
// sockplay. Each filter works on a stream cut into chunks: it takes the
// bytes it could not settle last time and the next chunk, and returns what
// it can produce now and the bytes it must see more of; a nil chunk ends
// the stream. The encodings are RFC 2045's base64 and quoted-printable.

func openMime(h *Host) {
	h.newLibrary("mime.core", "LuaSocket's MIME filters: base64, quoted-printable, line wrapping, end-of-line and SMTP dot-stuffing", func() *glua.LTable {
		core := h.L.NewTable()
		h.addFuncs(core, []fn{
			{"b64", mimeB64, "mime.b64(C [, D]) -> A, B  -- base64 of C..D's longest prefix of whole 3-byte groups (A) and the bytes left (B); D nil: the end, padded"},
			{"unb64", mimeUnb64, "mime.unb64(C [, D]) -> A, B  -- the bytes of C..D's whole 4-character base64 groups; other characters are skipped"},
			{"qp", mimeQp, "mime.qp(C [, D [, marker]]) -> A, B  -- quoted-printable of what can be encoded for certain; CRLF in the text becomes marker"},
			{"unqp", mimeUnqp, "mime.unqp(C [, D]) -> A, B  -- decode quoted-printable; soft line breaks go"},
			{"wrp", mimeWrp, "mime.wrp(left, B [, length]) -> A, left  -- break B into lines of at most length (76) bytes; left is the room on the current line"},
			{"qpwrp", mimeQpwrp, "mime.qpwrp(left, B [, length]) -> A, left  -- wrp for quoted-printable: soft breaks, never inside an =XX"},
			{"eol", mimeEol, "mime.eol(context, B [, marker]) -> A, context  -- every end of line (\\r, \\n, \\r\\n, \\n\\r) as marker (CRLF)"},
			{"dot", mimeDot, "mime.dot(state, B) -> A, state  -- SMTP dot-stuffing: a line that starts with . gets another"},
		})
		core.RawSetString("_VERSION", glua.LString("MIME 1.0.3"))
		return core
	})
}

const crlf = "\r\n"

var b64Alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"

// b64Value is each byte's base64 value; 255 for a byte base64 does not
// use. '=' counts as 0: padding decodes as zero bits.
var b64Value = func() (t [256]byte) {
	for i := range t {
		t[i] = 255
	}
	for i := 0; i < len(b64Alphabet); i++ {
		t[b64Alphabet[i]] = byte(i)
	}
	t['='] = 0
	return t
}()

// optBytes reads an optional string argument (numbers convert); ok is
// false for nil.
func optBytes(L *glua.LState, n int) ([]byte, bool) {
	if L.Get(n) == glua.LNil {
		return nil, false
	}
	return []byte(L.CheckString(n)), true
}

// pushChunk pushes a filter's output, nil when it is empty at the end of
// the stream, then the second result.
func pushChunks(L *glua.LState, out []byte, end bool, rest glua.LValue) int {
	if end && len(out) == 0 {
		L.Push(glua.LNil)
	} else {
		L.Push(glua.LString(out))
	}
	L.Push(rest)
	return 2
}

// b64Group encodes 3 bytes.
func b64Group(out []byte, a, b, c byte) []byte {
	v := uint32(a)<<16 | uint32(b)<<8 | uint32(c)
	return append(out, b64Alphabet[v>>18], b64Alphabet[v>>12&63], b64Alphabet[v>>6&63], b64Alphabet[v&63])
}

func mimeB64(L *glua.LState) int {
	c, ok := optBytes(L, 1)
	if !ok {
		return pushChunks(L, nil, true, glua.LNil)
	}
	d, more := optBytes(L, 2)
	in := append(c, d...)
	whole := len(in) / 3 * 3
	var out []byte
	for i := 0; i < whole; i += 3 {
		out = b64Group(out, in[i], in[i+1], in[i+2])
	}
	rest := in[whole:]
	if more {
		return pushChunks(L, out, false, glua.LString(rest))
	}
	switch len(rest) { // the end: pad the last group
	case 1:
		g := b64Group(nil, rest[0], 0, 0)
		out = append(out, g[0], g[1], '=', '=')
	case 2:
		g := b64Group(nil, rest[0], rest[1], 0)
		out = append(out, g[0], g[1], g[2], '=')
	}
	return pushChunks(L, out, true, glua.LNil)
}

func mimeUnb64(L *glua.LState) int {
	c, ok := optBytes(L, 1)
	if !ok {
		return pushChunks(L, nil, true, glua.LNil)
	}
	d, more := optBytes(L, 2)
	var out, atom []byte
	for _, x := range append(c, d...) {
		if b64Value[x] > 64 {
			continue
		}
		atom = append(atom, x)
		if len(atom) < 4 {
			continue
		}
		v := uint32(b64Value[atom[0]])<<18 | uint32(b64Value[atom[1]])<<12 | uint32(b64Value[atom[2]])<<6 | uint32(b64Value[atom[3]])
		decoded := []byte{byte(v >> 16), byte(v >> 8), byte(v)}
		switch {
		case atom[2] == '=':
			out = append(out, decoded[:1]...)
		case atom[3] == '=':
			out = append(out, decoded[:2]...)
		default:
			out = append(out, decoded...)
		}
		atom = atom[:0]
	}
	if more {
		return pushChunks(L, out, false, glua.LString(atom))
	}
	return pushChunks(L, out, true, glua.LNil)
}

// How quoted-printable treats each byte.
const (
	qpPlain  = iota // printable: as it is
	qpQuoted        // always =XX
	qpCR            // a CR: part of a line break if LF follows
	qpIfLast        // space and tab: =XX at the end of a line, else as they are
)

var qpClass = func() (t [256]byte) {
	for i := range t {
		t[i] = qpQuoted
	}
	for i := 33; i <= 126; i++ {
		if i != '=' {
			t[i] = qpPlain
		}
	}
	t['\t'], t[' '], t['\r'] = qpIfLast, qpIfLast, qpCR
	return t
}()

const hexDigits = "0123456789ABCDEF"

func qpQuote(out []byte, c byte) []byte { return append(out, '=', hexDigits[c>>4], hexDigits[c&15]) }

// qpEncode settles what it can of in, returning the output and the bytes
// whose encoding depends on what comes next (at most 2).
func qpEncode(out, in []byte, marker string) ([]byte, []byte) {
	for len(in) > 0 {
		switch qpClass[in[0]] {
		case qpCR:
			if len(in) < 2 {
				return out, in
			}
			if in[1] == '\n' {
				out = append(out, marker...)
				in = in[2:]
				continue
			}
			out = qpQuote(out, in[0])
		case qpIfLast:
			if len(in) < 3 {
				return out, in
			}
			if in[1] == '\r' && in[2] == '\n' {
				out = append(qpQuote(out, in[0]), marker...)
				in = in[3:]
				continue
			}
			out = append(out, in[0])
		case qpQuoted:
			out = qpQuote(out, in[0])
		default:
			out = append(out, in[0])
		}
		in = in[1:]
	}
	return out, in
}

func mimeQp(L *glua.LState) int {
	c, ok := optBytes(L, 1)
	if !ok {
		return pushChunks(L, nil, true, glua.LNil)
	}
	marker := L.OptString(3, crlf)
	d, more := optBytes(L, 2)
	out, rest := qpEncode(nil, append(c, d...), marker)
	if more {
		return pushChunks(L, out, false, glua.LString(rest))
	}
	// The end: the bytes left are encoded as they stand, and a soft line
	// break ends the text.
	for _, x := range rest {
		if qpClass[x] == qpPlain {
			out = append(out, x)
		} else {
			out = qpQuote(out, x)
		}
	}
	if len(rest) > 0 {
		out = append(out, "="+crlf...)
	}
	return pushChunks(L, out, true, glua.LNil)
}

func hexValue(c byte) (byte, bool) {
	switch {
	case c >= '0' && c <= '9':
		return c - '0', true
	case c >= 'A' && c <= 'F':
		return c - 'A' + 10, true
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10, true
	}
	return 0, false
}

// qpDecode decodes what it can of in and returns the bytes that need more.
func qpDecode(out, in []byte) ([]byte, []byte) {
	for len(in) > 0 {
		switch in[0] {
		case '=':
			if len(in) < 3 {
				return out, in
			}
			hi, ok1 := hexValue(in[1])
			lo, ok2 := hexValue(in[2])
			switch {
			case in[1] == '\r' && in[2] == '\n': // a soft line break
			case ok1 && ok2:
				out = append(out, hi<<4|lo)
			default:
				out = append(out, in[:3]...)
			}
			in = in[3:]
			continue
		case '\r':
			if len(in) < 2 {
				return out, in
			}
			if in[1] == '\n' {
				out = append(out, in[:2]...)
			}
			in = in[2:]
			continue
		default:
			if in[0] == '\t' || in[0] > 31 && in[0] < 127 {
				out = append(out, in[0])
			}
		}
		in = in[1:]
	}
	return out, in
}

func mimeUnqp(L *glua.LState) int {
	c, ok := optBytes(L, 1)
	if !ok {
		return pushChunks(L, nil, true, glua.LNil)
	}
	d, more := optBytes(L, 2)
	out, rest := qpDecode(nil, append(c, d...))
	if more {
		return pushChunks(L, out, false, glua.LString(rest))
	}
	return pushChunks(L, out, true, glua.LNil)
}

// wrap is wrp and qpwrp: break lines at length, keeping \n as line ends
// (written CRLF) and dropping \r. For quoted-printable the break is soft
// (=CRLF) and never splits an =XX.
func wrap(L *glua.LState, qp bool) int {
	left := int(L.CheckNumber(1))
	in, ok := optBytes(L, 2)
	length := int(L.OptNumber(3, 76))
	if !ok {
		switch {
		case left < length && qp:
			L.Push(glua.LString("=" + crlf))
		case left < length:
			L.Push(glua.LString(crlf))
		default:
			L.Push(glua.LNil)
		}
		L.Push(glua.LNumber(length))
		return 2
	}
	brk := crlf
	if qp {
		brk = "=" + crlf
	}
	var out []byte
	for _, c := range in {
		switch {
		case c == '\r':
			continue
		case c == '\n':
			out = append(out, crlf...)
			left = length
			continue
		case qp && c == '=' && left <= 3, qp && c != '=' && left <= 1, !qp && left <= 0:
			out = append(out, brk...)
			left = length
		}
		out = append(out, c)
		left--
	}
	L.Push(glua.LString(out))
	L.Push(glua.LNumber(left))
	return 2
}

func mimeWrp(L *glua.LState) int   { return wrap(L, false) }
func mimeQpwrp(L *glua.LState) int { return wrap(L, true) }

func isEOLByte(c int) bool { return c == '\r' || c == '\n' }

func mimeEol(L *glua.LState) int {
	ctx := L.CheckInt(1)
	in, ok := optBytes(L, 2)
	marker := L.OptString(3, crlf)
	if !ok {
		L.Push(glua.LNil)
		L.Push(glua.LNumber(0))
		return 2
	}
	var out []byte
	// ctx is the end-of-line byte just seen, if any: \r\n and \n\r are one
	// line end, \r\r and \n\n two.
	for _, b := range in {
		c := int(b)
		switch {
		case !isEOLByte(c):
			out = append(out, b)
			ctx = 0
		case isEOLByte(ctx):
			if c == ctx {
				out = append(out, marker...)
			}
			ctx = 0
		default:
			out = append(out, marker...)
			ctx = c
		}
	}
	L.Push(glua.LString(out))
	L.Push(glua.LNumber(ctx))
	return 2
}

func mimeDot(L *glua.LState) int {
	state := int(L.CheckNumber(1))
	in, ok := optBytes(L, 2)
	if !ok {
		L.Push(glua.LNil)
		L.Push(glua.LNumber(2))
		return 2
	}
	// state: 1 after a CR, 2 at the start of a line (after CRLF).
	var out []byte
	for _, c := range in {
		out = append(out, c)
		switch {
		case c == '\r':
			state = 1
		case c == '\n' && state == 1:
			state = 2
		case c == '.' && state == 2:
			out = append(out, '.')
			state = 0
		default:
			state = 0
		}
	}
	L.Push(glua.LString(out))
	L.Push(glua.LNumber(state))
	return 2
}
