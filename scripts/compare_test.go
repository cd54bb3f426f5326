package scripts_test

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"sockplay/internal/scripttest"
	"sockplay/internal/testpeer"
)

// compareTimeout bounds one run of compare.lua; under -race on a busy
// machine a run that takes a second can take ten.
const compareTimeout = 90 * time.Second

// tableRow is one line of compare.lua's side-by-side table.
type tableRow struct {
	Section, Label, TCP, UDP string
}

// parseTable cuts the table out of compare.lua's output: the header line
// gives the columns' positions, section titles start at the margin, rows
// are indented, and the summary ends it.
func parseTable(t *testing.T, out string) []tableRow {
	t.Helper()
	lines := strings.Split(out, "\n")
	head := -1
	header := regexp.MustCompile(`^\s+TCP\s+UDP$`)
	for i, l := range lines {
		if header.MatchString(l) {
			head = i
			break
		}
	}
	if head < 0 {
		t.Fatalf("no TCP/UDP header line in:\n%s", out)
	}
	tcpCol, udpCol := strings.Index(lines[head], "TCP"), strings.Index(lines[head], "UDP")
	cell := func(l string, from, to int) string {
		if from >= len(l) {
			return ""
		}
		return strings.TrimSpace(l[from:min(to, len(l))])
	}
	var rows []tableRow
	section := ""
	for _, l := range lines[head+1:] {
		switch {
		case l == "":
			return rows
		case !strings.HasPrefix(l, " "):
			section = l
		default:
			rows = append(rows, tableRow{section, cell(l, 2, tcpCol), cell(l, tcpCol, udpCol), cell(l, udpCol, len(l))})
		}
	}
	return rows
}

// find returns the first row with label in the section starting with prefix.
func find(t *testing.T, rows []tableRow, prefix, label string) tableRow {
	t.Helper()
	for _, r := range rows {
		if strings.HasPrefix(r.Section, prefix) && r.Label == label {
			return r
		}
	}
	t.Fatalf("no row %q in section %q", label, prefix)
	return tableRow{}
}

// counts is the delivery section of one column.
type counts struct{ Sent, Received, Lost, Duplicated, OutOfOrder int }

func deliveryCounts(t *testing.T, rows []tableRow) (tcp, udp counts) {
	t.Helper()
	num := func(s string) int {
		n, err := strconv.Atoi(s)
		if err != nil {
			t.Fatalf("delivery cell %q is not a count", s)
		}
		return n
	}
	get := func(label string) (int, int) {
		r := find(t, rows, "delivery", label)
		return num(r.TCP), num(r.UDP)
	}
	tcp.Sent, udp.Sent = get("sent")
	tcp.Received, udp.Received = get("received")
	tcp.Lost, udp.Lost = get("lost")
	tcp.Duplicated, udp.Duplicated = get("duplicated")
	tcp.OutOfOrder, udp.OutOfOrder = get("out of order")
	return tcp, udp
}

func checkAddsUp(t *testing.T, proto string, c counts) {
	t.Helper()
	if c.Sent != c.Received+c.Lost-c.Duplicated {
		t.Errorf("%s: sent %d != received %d + lost %d - duplicated %d", proto, c.Sent, c.Received, c.Lost, c.Duplicated)
	}
}

func runCompare(t *testing.T, args ...string) scripttest.Result {
	t.Helper()
	res := scripttest.Run(t, "", compareTimeout, append([]string{scripttest.Script("compare.lua")}, args...)...)
	if res.Code != 0 || res.Stderr != "" {
		t.Fatalf("compare.lua %s: exit %d\nstderr:\n%s\nstdout:\n%s", strings.Join(args, " "), res.Code, res.Stderr, res.Stdout)
	}
	return res
}

// The JSON file's shape, as far as the test reads it.
type compareJSON struct {
	Config struct {
		Count int     `json:"count"`
		Sizes []int   `json:"sizes"`
		Loss  float64 `json:"loss"`
		Seed  int     `json:"seed"`
	} `json:"config"`
	Setup struct {
		TCP struct {
			Packets int     `json:"packets"`
			Connect float64 `json:"connect"`
		} `json:"tcp"`
		UDP struct {
			Packets int `json:"packets"`
		} `json:"udp"`
	} `json:"setup"`
	Boundaries struct {
		Sizes  []int `json:"sizes"`
		Buffer int   `json:"buffer"`
		TCP    []struct {
			Bytes  int `json:"bytes"`
			Pieces []struct {
				Msg   int `json:"msg"`
				Bytes int `json:"bytes"`
			} `json:"pieces"`
		} `json:"tcp"`
		UDP []struct {
			Bytes     int  `json:"bytes"`
			Size      int  `json:"size"`
			Truncated bool `json:"truncated"`
		} `json:"udp"`
	} `json:"boundaries"`
	Delivery struct {
		TCP deliveryJSON `json:"tcp"`
		UDP struct {
			deliveryJSON
			KernelLost    int `json:"kernel_lost"`
			ImpairmentDid struct {
				Sent, Dropped, Duplicated, Reordered int
			} `json:"impairment_did"`
		} `json:"udp"`
	} `json:"delivery"`
	Performance struct {
		BySize []struct {
			Size int      `json:"size"`
			TCP  perfJSON `json:"tcp"`
			UDP  perfJSON `json:"udp"`
		} `json:"by_size"`
		LargestDatagram struct {
			IPv4 struct {
				Largest int `json:"largest"`
				Refused int `json:"refused"`
				Error   struct {
					Code string `json:"code"`
				} `json:"error"`
			} `json:"ipv4"`
		} `json:"largest_datagram"`
	} `json:"performance"`
	Errors struct {
		TCP struct {
			Connect struct {
				OK   bool   `json:"ok"`
				Code string `json:"code"`
			} `json:"connect"`
		} `json:"tcp"`
		UDP struct {
			Sendto   struct{ Bytes int } `json:"sendto"`
			Recvfrom struct{ Code string }
			Connect  struct{ OK bool }
			Write    struct{ Bytes int }
			NextCall struct {
				Call string `json:"call"`
				Code string `json:"code"`
			} `json:"next_call"`
		} `json:"udp"`
	} `json:"errors"`
	Table []struct {
		Section string `json:"section"`
		Label   string `json:"label"`
		TCP     string `json:"tcp"`
		UDP     string `json:"udp"`
	} `json:"table"`
	Summary []string `json:"summary"`
}

type deliveryJSON struct {
	Sent       int     `json:"sent"`
	Received   int     `json:"received"`
	Lost       int     `json:"lost"`
	Duplicated int     `json:"duplicated"`
	OutOfOrder int     `json:"out_of_order"`
	TransitP50 float64 `json:"transit_p50"`
}

type perfJSON struct {
	Sent      int     `json:"sent"`
	Delivered int     `json:"delivered"`
	MBPerS    float64 `json:"mb_per_s"`
	RTTP50    float64 `json:"rtt_p50"`
	RTTP99    float64 `json:"rtt_p99"`
}

func TestCompareDefaultRun(t *testing.T) {
	dir := t.TempDir()
	jsonFile, svgFile := filepath.Join(dir, "out.json"), filepath.Join(dir, "out.svg")
	res := runCompare(t, "--count", "200", "--json", jsonFile, "--svg", svgFile)
	out := res.Stdout
	rows := parseTable(t, out)

	// Every row is there, in its section.
	want := map[string][]string{
		"setup":       {"packets before data", "connect()", "accept()", "socket to 1st message"},
		"boundaries":  {"receive calls", "each returned", "message edges", "empty message", "message > buffer"},
		"delivery":    {"sent", "received", "lost", "duplicated", "out of order", "transit p50 / p99"},
		"performance": {"64 B throughput", "64 B rtt p50/90/99", "1 KiB throughput", "1 KiB rtt p50/90/99", "8 KiB throughput", "8 KiB rtt p50/90/99", "largest message"},
		"errors":      {"connect()", "first send", "next call", "unconnected sendto"},
	}
	for section, labels := range want {
		for _, l := range labels {
			find(t, rows, section, l)
		}
	}
	if !strings.Contains(out, "\nsummary\n") {
		t.Errorf("no summary:\n%s", out)
	}

	// What is exact: the boundaries, the limits, the error path.
	exact := []struct {
		section, label, tcp, udp string
	}{
		{"setup", "packets before data", "3: SYN, SYN-ACK, ACK", "0: no connection"},
		{"boundaries", "receive calls", "", "5 recvfroms"},
		{"boundaries", "each returned", "", "0, 5, 100, 1500, 2048 (of 3000)"},
		{"boundaries", "empty message", "write(\"\") sends nothing", "delivered: recvfrom gave \"\""},
		{"boundaries", "message > buffer", "split across reads", "cut to 2048 of 3000; rest gone"},
		{"performance", "largest message", "no limit: a stream", "IPv4 65507 B (65508: EMSGSIZE)"},
		{"errors", "first send", "never: not connected", "write: 5 bytes, no error"},
		{"errors", "next call", "-", "read: ECONNREFUSED"},
		{"errors", "unconnected sendto", "-", "sendto: 5 bytes, no error;"},
	}
	for _, e := range exact {
		r := find(t, rows, e.section, e.label)
		if e.tcp != "" && r.TCP != e.tcp {
			t.Errorf("%s / %s: TCP %q, want %q", e.section, e.label, r.TCP, e.tcp)
		}
		if r.UDP != e.udp {
			t.Errorf("%s / %s: UDP %q, want %q", e.section, e.label, r.UDP, e.udp)
		}
	}
	if r := find(t, rows, "errors", "connect()"); !strings.HasPrefix(r.TCP, "ECONNREFUSED after ") || r.UDP != "ok: no packet sent" {
		t.Errorf("errors / connect(): %+v", r)
	}
	// TCP's reads hold the 4605 bytes, whatever the split.
	var tcpTotal int
	for _, f := range strings.Split(find(t, rows, "boundaries", "each returned").TCP, ", ") {
		n, err := strconv.Atoi(f)
		if err != nil || n < 1 || n > 2048 {
			t.Errorf("TCP read of %q bytes: want 1..2048", f)
		}
		tcpTotal += n
	}
	if tcpTotal != 0+5+100+1500+3000 {
		t.Errorf("TCP reads add up to %d bytes, want 4605", tcpTotal)
	}

	// The delivery counts add up; TCP loses nothing; UDP's loss is near
	// the 10% asked for (seed 42 drops the same datagrams every run).
	tcp, udp := deliveryCounts(t, rows)
	checkAddsUp(t, "TCP", tcp)
	checkAddsUp(t, "UDP", udp)
	if tcp != (counts{200, 200, 0, 0, 0}) {
		t.Errorf("TCP delivery %+v, want all 200 once in order", tcp)
	}
	if udp.Sent != 200 || udp.Lost < 6 || udp.Lost > 50 || udp.Duplicated > 15 || udp.OutOfOrder > 30 {
		t.Errorf("UDP delivery %+v is outside the bounds for loss 10%%, duplicate 2%%, reorder 5%%", udp)
	}
	flat := strings.Join(strings.Fields(out), " ") // the summary is wrapped
	if !strings.Contains(flat, "TCP delivered all 200, once each, in order") ||
		!strings.Contains(flat, "Delivery: UDP lost "+strconv.Itoa(udp.Lost)+" of 200 datagrams") {
		t.Errorf("the summary does not restate the table's delivery counts:\n%s", out)
	}

	// The JSON carries the same numbers.
	data, err := os.ReadFile(jsonFile)
	if err != nil {
		t.Fatal(err)
	}
	var js compareJSON
	if err := json.Unmarshal(data, &js); err != nil {
		t.Fatalf("--json output does not parse: %v\n%s", err, data)
	}
	if js.Config.Count != 200 || !reflect.DeepEqual(js.Config.Sizes, []int{64, 1024, 8192}) || js.Config.Loss != 0.1 || js.Config.Seed != 42 {
		t.Errorf("config %+v", js.Config)
	}
	if got := (counts{js.Delivery.UDP.Sent, js.Delivery.UDP.Received, js.Delivery.UDP.Lost, js.Delivery.UDP.Duplicated, js.Delivery.UDP.OutOfOrder}); got != udp {
		t.Errorf("JSON UDP delivery %+v, table %+v", got, udp)
	}
	if got := (counts{js.Delivery.TCP.Sent, js.Delivery.TCP.Received, js.Delivery.TCP.Lost, js.Delivery.TCP.Duplicated, js.Delivery.TCP.OutOfOrder}); got != tcp {
		t.Errorf("JSON TCP delivery %+v, table %+v", got, tcp)
	}
	// What the impairment says it did is what went missing and what came
	// twice, unless the kernel dropped some too (a full receive buffer).
	did := js.Delivery.UDP.ImpairmentDid
	if did.Sent != 200 {
		t.Errorf("the impairment saw %d datagrams, want 200", did.Sent)
	}
	if k := js.Delivery.UDP.KernelLost; k > 0 {
		t.Logf("the kernel dropped %d datagrams too; not comparing with the impairment's counts", k)
	} else if did.Dropped != udp.Lost || did.Duplicated != udp.Duplicated {
		t.Errorf("impairment dropped %d and duplicated %d; the table says lost %d, duplicated %d", did.Dropped, did.Duplicated, udp.Lost, udp.Duplicated)
	}
	var udpSizes []int
	for _, d := range js.Boundaries.UDP {
		udpSizes = append(udpSizes, d.Size)
	}
	if !reflect.DeepEqual(udpSizes, []int{0, 5, 100, 1500, 3000}) || !js.Boundaries.UDP[4].Truncated || js.Boundaries.UDP[4].Bytes != 2048 {
		t.Errorf("JSON boundaries %+v", js.Boundaries.UDP)
	}
	for _, r := range js.Boundaries.TCP {
		sum := 0
		for _, p := range r.Pieces {
			sum += p.Bytes
		}
		if sum != r.Bytes || len(r.Pieces) == 0 {
			t.Errorf("TCP read of %d bytes has pieces %+v", r.Bytes, r.Pieces)
		}
	}
	if l := js.Performance.LargestDatagram.IPv4; l.Largest != 65507 || l.Refused != 65508 || l.Error.Code != "EMSGSIZE" {
		t.Errorf("largest datagram %+v", l)
	}
	if len(js.Performance.BySize) != 3 {
		t.Fatalf("performance for %d sizes, want 3", len(js.Performance.BySize))
	}
	for _, p := range js.Performance.BySize {
		if p.TCP.Delivered != 200 || p.TCP.MBPerS <= 0 || p.TCP.RTTP50 <= 0 || p.UDP.RTTP50 <= 0 || p.TCP.RTTP50 > p.TCP.RTTP99 {
			t.Errorf("performance at %d bytes: %+v", p.Size, p)
		}
	}
	if e := js.Errors; e.TCP.Connect.OK || e.TCP.Connect.Code != "ECONNREFUSED" || e.UDP.Sendto.Bytes != 5 ||
		e.UDP.Recvfrom.Code != "ETIMEDOUT" || !e.UDP.Connect.OK || e.UDP.Write.Bytes != 5 ||
		e.UDP.NextCall.Call != "read" || e.UDP.NextCall.Code != "ECONNREFUSED" {
		t.Errorf("JSON errors %+v", e)
	}
	// The table in the JSON is the printed table, cell for cell.
	var fromJSON []tableRow
	section := ""
	for _, r := range js.Table {
		if r.Section != "" {
			section = r.Section
			continue
		}
		fromJSON = append(fromJSON, tableRow{section, r.Label, r.TCP, r.UDP})
	}
	if !reflect.DeepEqual(fromJSON, rows) {
		t.Errorf("JSON table differs from the printed one:\njson:    %q\nprinted: %q", fromJSON, rows)
	}
	// And so is the summary, but for the line wrapping.
	summary := out[strings.Index(out, "\nsummary\n")+len("\nsummary\n"):]
	summary = summary[:strings.Index(summary, "\nwrote ")]
	if got, want := strings.Join(strings.Fields(summary), " "), strings.Join(strings.Fields("- "+strings.Join(js.Summary, " - ")), " "); got != want {
		t.Errorf("printed summary:\n%s\nJSON summary:\n%s", got, want)
	}

	checkSVG(t, svgFile)
}

// checkSVG has a real renderer draw the chart: rsvg-convert must accept it
// and produce a PNG.
func checkSVG(t *testing.T, svgFile string) {
	t.Helper()
	svg, err := os.ReadFile(svgFile)
	if err != nil {
		t.Fatal(err)
	}
	// Well-formed XML first, for a precise message when it is not.
	dec := xml.NewDecoder(bytes.NewReader(svg))
	for {
		if _, err := dec.Token(); err == io.EOF {
			break
		} else if err != nil {
			t.Fatalf("SVG is not well-formed XML: %v", err)
		}
	}
	for _, s := range []string{"Delivery", "Throughput", "Round trip", "Setup", "Message boundaries", "TCP reads", "UDP recvfroms"} {
		if !bytes.Contains(svg, []byte(s)) {
			t.Errorf("SVG lacks %q", s)
		}
	}
	rsvg := testpeer.Path(t, "rsvg-convert")
	png := filepath.Join(t.TempDir(), "out.png")
	cmd := exec.Command(rsvg, "-o", png, svgFile)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("rsvg-convert: %v\n%s", err, out)
	}
	img, err := os.ReadFile(png)
	if err != nil {
		t.Fatal(err)
	}
	if len(img) < 1000 || !bytes.HasPrefix(img, []byte("\x89PNG\r\n\x1a\n")) {
		t.Errorf("rsvg-convert made %d bytes that are not a PNG", len(img))
	}
}

func TestCompareOptions(t *testing.T) {
	// No impairment: on loopback UDP then loses, duplicates and reorders
	// nothing, and the summary says so.
	res := runCompare(t, "--count", "120", "--sizes", "100,2000", "--loss", "0", "--duplicate", "0", "--reorder", "0")
	rows := parseTable(t, res.Stdout)
	tcp, udp := deliveryCounts(t, rows)
	if tcp != (counts{120, 120, 0, 0, 0}) || udp != (counts{120, 120, 0, 0, 0}) {
		t.Errorf("unimpaired delivery: TCP %+v, UDP %+v", tcp, udp)
	}
	find(t, rows, "delivery (UDP impaired: none)", "sent")
	find(t, rows, "performance (120 messages", "100 B throughput")
	find(t, rows, "performance", "2000 B rtt p50/90/99")
	if !strings.Contains(strings.Join(strings.Fields(res.Stdout), " "), "UDP lost, duplicated and reordered nothing") {
		t.Errorf("the summary does not say UDP lost nothing:\n%s", res.Stdout)
	}

	// Heavy loss with delay: the counts still add up, the loss is near 50%,
	// and the summary reports the delay.
	res = runCompare(t, "--count", "200", "--sizes", "64", "--loss", "0.5", "--duplicate", "0.1", "--reorder", "0",
		"--delay", "0.005", "--jitter", "0.002", "--seed", "7")
	rows = parseTable(t, res.Stdout)
	tcp, udp = deliveryCounts(t, rows)
	checkAddsUp(t, "TCP", tcp)
	checkAddsUp(t, "UDP", udp)
	if udp.Lost < 60 || udp.Lost > 140 || udp.Duplicated < 1 || udp.Duplicated > 30 {
		t.Errorf("UDP delivery %+v: want about 100 lost and 10 duplicated", udp)
	}
	if flat := strings.Join(strings.Fields(res.Stdout), " "); !strings.Contains(flat, "loss 50%, duplicate 10%, delay 5.00 ms, jitter 2.00 ms, seed 7") ||
		!strings.Contains(flat, "Delay: the median UDP datagram took") {
		t.Errorf("impairment or delay missing from the output:\n%s", res.Stdout)
	}
}

func TestCompareHelpAndMistakes(t *testing.T) {
	res := scripttest.Run(t, "", compareTimeout, scripttest.Script("compare.lua"), "--help")
	if res.Code != 0 {
		t.Fatalf("--help: exit %d, stderr %q", res.Code, res.Stderr)
	}
	for _, o := range []string{"--count", "--sizes", "--loss", "--duplicate", "--reorder", "--delay", "--jitter", "--seed", "--json", "--svg", "--help"} {
		if !strings.Contains(res.Stdout, "\n  "+o+" ") {
			t.Errorf("--help does not list %s:\n%s", o, res.Stdout)
		}
	}
	for _, c := range []struct {
		args []string
		msg  string
	}{
		{[]string{"--loss", "2"}, "compare.lua: --loss must be between 0 and 1 (try --help)\n"},
		{[]string{"--sizes", "64,0"}, "compare.lua: --sizes: '0' is not a size from 1 to 65507 bytes (the largest UDP datagram) (try --help)\n"},
		{[]string{"--sizes", "70000"}, "compare.lua: --sizes: '70000' is not a size from 1 to 65507 bytes (the largest UDP datagram) (try --help)\n"},
		{[]string{"--count", "0"}, "compare.lua: --count must be a whole number from 1 to 100000 (try --help)\n"},
		{[]string{"--delay", "-1"}, "compare.lua: --delay must be between 0 and 10 seconds (try --help)\n"},
		{[]string{"--frobnicate"}, "compare.lua: unknown option --frobnicate (try --help)\n"},
		{[]string{"extra"}, "compare.lua: unexpected argument 'extra' (try --help)\n"},
	} {
		res := scripttest.Run(t, "", compareTimeout, append([]string{scripttest.Script("compare.lua")}, c.args...)...)
		if res.Code != 2 || res.Stderr != c.msg || res.Stdout != "" {
			t.Errorf("compare.lua %s: exit %d, stderr %q, stdout %q; want exit 2 and %q", strings.Join(c.args, " "), res.Code, res.Stderr, res.Stdout, c.msg)
		}
	}
}

// TestJSONLibrary feeds scripts/lib/json.lua what is awkward to encode and
// has encoding/json read it back.
func TestJSONLibrary(t *testing.T) {
	code := `package.path = "scripts/lib/?.lua;" .. package.path
local json = require("json")
io.write(json.encode({
  text = "quote \" backslash \\ newline \n tab \t nul \0 bell \7 del \127 é",
  ints = {1, -2, 0, 2^53 - 1},
  floats = {0.5, 1e-7, 123456.789},
  empty_object = {}, empty_array = json.array(),
  holes = {1, nil, 3},
  sparse = {[1] = "a", [100] = "b"},
  nan = 0/0, inf = math.huge,
  yes = true, no = false,
  nested = {a = {b = {c = "d"}}},
}, "  "))`
	res := scripttest.Run(t, "", 30*time.Second, "-e", code)
	if res.Code != 0 {
		t.Fatalf("exit %d: %s", res.Code, res.Stderr)
	}
	var got map[string]any
	if err := json.Unmarshal([]byte(res.Stdout), &got); err != nil {
		t.Fatalf("json.lua wrote what encoding/json cannot read: %v\n%s", err, res.Stdout)
	}
	want := map[string]any{
		"text":         "quote \" backslash \\ newline \n tab \t nul \x00 bell \a del \x7f é",
		"ints":         []any{1.0, -2.0, 0.0, 9007199254740991.0},
		"floats":       []any{0.5, 1e-7, 123456.789},
		"empty_object": map[string]any{},
		"empty_array":  []any{},
		"holes":        []any{1.0, nil, 3.0},
		"sparse":       map[string]any{"1": "a", "100": "b"},
		"nan":          nil,
		"inf":          nil,
		"yes":          true,
		"no":           false,
		"nested":       map[string]any{"a": map[string]any{"b": map[string]any{"c": "d"}}},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("decoded:\n%#v\nwant:\n%#v", got, want)
	}
	// Keys are sorted, so the text is the same every time.
	if i, j := strings.Index(res.Stdout, `"empty_array"`), strings.Index(res.Stdout, `"yes"`); i < 0 || j < i {
		t.Errorf("keys not in order:\n%s", res.Stdout)
	}
}
