package wire

import (
	"regexp"
	"strings"
	"testing"
)

// The layer view of real frames, captured on loopback (testdata/capture.sh).
func TestLayerViewGolden(t *testing.T) {
	for _, c := range []struct {
		golden, pcap string
		frame        int
	}{
		{"layers_http_request.golden", "http.pcap", 3},
		{"layers_http_response.golden", "http.pcap", 5},
		{"layers_syn.golden", "http.pcap", 0},
		{"layers_dns_query.golden", "dns.pcap", 0},
		{"layers_dns_answer.golden", "dns.pcap", 1},
		{"layers_dns_by_content.golden", "dns.pcap", 3},
		{"layers_ipv6.golden", "ipv6.pcap", 3},
		{"layers_snapshot_cut.golden", "http_snap.pcap", 5},
	} {
		t.Run(c.golden, func(t *testing.T) {
			pkts := testFrames(t, c.pcap)
			checkGolden(t, c.golden, LayerView(pkts[c.frame], false))
		})
	}
}

// Every frame of every capture decodes without a raw layer, the layers
// tile the frame, and each field lies inside its layer.
func TestDecodeCapturedFrames(t *testing.T) {
	for _, name := range []string{"http.pcap", "http_snap.pcap", "ipv6.pcap", "dns.pcap", "rst.pcap", "loss.pcap"} {
		for i, p := range testFrames(t, name) {
			ls := Decode(p)
			checkTiling(t, p, ls)
			for _, l := range ls {
				if l.Level == LevelRaw {
					t.Errorf("%s frame %d: raw layer %+v", name, i, l)
				}
			}
			want := []string{LevelLink, LevelNetwork, LevelTransport}
			for j, lv := range want {
				if j >= len(ls) || ls[j].Level != lv {
					t.Fatalf("%s frame %d: layers %v, want %v first", name, i, levels(ls), want)
				}
			}
		}
	}
}

func levels(ls []Layer) []string {
	var out []string
	for _, l := range ls {
		out = append(out, l.Level+" "+l.Name)
	}
	return out
}

// checkTiling fails t unless the layers cover the frame in order without
// gaps or overlaps and every field sits inside its layer.
func checkTiling(t testing.TB, p Packet, ls []Layer) {
	t.Helper()
	at := 0
	for _, l := range ls {
		if l.Start != at || l.End < l.Start {
			t.Fatalf("layers do not tile the %d-byte frame: %v at %d-%d, expected start %d", len(p.Data), l.Name, l.Start, l.End, at)
		}
		for _, f := range l.Fields {
			if f.Start < l.Start || f.End > l.End || f.End < f.Start {
				t.Fatalf("field %s %d-%d lies outside layer %s %d-%d", f.Name, f.Start, f.End, l.Name, l.Start, l.End)
			}
		}
		at = l.End
	}
	if at != len(p.Data) {
		t.Fatalf("layers end at %d, the frame at %d", at, len(p.Data))
	}
}

// A frame cut at every length decodes as far as its bytes go: the headers
// that fit are whole, the rest is raw or a shorter application layer, and
// nothing panics.
func TestDecodeTruncated(t *testing.T) {
	full := testFrames(t, "http.pcap")[3] // Ethernet, IPv4, TCP (32), HTTP
	for n := 0; n <= len(full.Data); n++ {
		p := full
		p.Data = full.Data[:n:n]
		ls := Decode(p)
		checkTiling(t, p, ls)
		out := LayerView(p, false)
		switch {
		case n >= 66+1:
			if len(ls) != 4 || ls[3].Name != "HTTP" && ls[3].Name != "payload" {
				t.Fatalf("cut at %d: %v", n, levels(ls))
			}
		case n >= 34+20 && n < 66:
			// The TCP header's options are cut: TCP cannot decode.
			if ls[len(ls)-1].Level != LevelRaw || !strings.Contains(out, "TCP does not decode") {
				t.Fatalf("cut at %d: %v\n%s", n, levels(ls), out)
			}
		}
	}
}

// A header that lies about itself stops decoding there, with a note.
func TestDecodeMalformed(t *testing.T) {
	base := testFrames(t, "http.pcap")[3]
	for _, c := range []struct {
		name  string
		at    int
		value byte
		want  string
	}{
		{"IPv4 header length 3", 14, 0x43, "IPv4 does not decode"},
		// The offset fits the frame: the options are read until one whose
		// length cannot be followed, and the rest is shown raw.
		{"TCP data offset 15", 46, 0xf0, "66-93     bad option        47 45 54 20"},
		{"TCP data offset 2", 46, 0x20, "TCP does not decode"},
		{"unknown EtherType", 12, 0x99, "not decoded"},
	} {
		p := base
		p.Data = append([]byte(nil), base.Data...)
		p.Data[c.at] = c.value
		ls := Decode(p)
		checkTiling(t, p, ls)
		if out := LayerView(p, false); !strings.Contains(out, c.want) {
			t.Errorf("%s: no %q in\n%s", c.name, c.want, out)
		}
	}
}

// Colour changes nothing but the escape codes, and only when asked for.
func TestLayerViewColor(t *testing.T) {
	p := testFrames(t, "http.pcap")[5]
	plain, colored := LayerView(p, false), LayerView(p, true)
	if strings.Contains(plain, "\x1b[") {
		t.Fatal("escape codes in the plain view")
	}
	if !strings.Contains(colored, "\x1b[35m") || !strings.Contains(colored, "\x1b[1;34m") {
		t.Fatalf("no colours in the coloured view:\n%q", colored)
	}
	if stripped := regexp.MustCompile("\x1b\\[[0-9;]*m").ReplaceAllString(colored, ""); stripped != plain {
		t.Fatalf("the coloured view is not the plain view with colours:\n%s\n---\n%s", stripped, plain)
	}
}

// No line of the view is wider than 100 columns, however long a header.
func TestLayerViewWidth(t *testing.T) {
	p := testFrames(t, "http.pcap")[5]
	for _, line := range strings.Split(LayerView(p, false), "\n") {
		if len(line) > viewWidth {
			t.Errorf("line of %d columns: %q", len(line), line)
		}
	}
}

// What the capture knows about a frame heads the view.
func TestLayerViewSummary(t *testing.T) {
	p := testFrames(t, "http.pcap")[3]
	p.Iface, p.Out, p.FD, p.Owner, p.Call, p.PeerFD, p.PeerOwner = "lo", true, 7, "task 1 (main)", "write", 9, "task 2 (server)"
	first, _, _ := strings.Cut(LayerView(p, false), "\n")
	if want := "frame: 154 bytes, on lo; fd 7 (task 1 (main)) > fd 9 (task 2 (server)): write"; first != want {
		t.Fatalf("summary %q, want %q", first, want)
	}
}

// go test -bench 'Decode|LayerView' ./sock/wire: the cost of one HTTP
// request frame taken apart, and of its whole view.
func BenchmarkDecode(b *testing.B) {
	p := testFrames(b, "http.pcap")[3]
	for b.Loop() {
		Decode(p)
	}
}

func BenchmarkLayerView(b *testing.B) {
	p := testFrames(b, "http.pcap")[3]
	for b.Loop() {
		LayerView(p, false)
	}
}
