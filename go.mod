module sockplay

go 1.26.0

require (
	github.com/google/gopacket v1.1.19
	github.com/miekg/dns v1.1.73
	github.com/peterh/liner v1.2.3
	github.com/yuin/gopher-lua v1.1.2
	golang.org/x/sys v0.49.0
	golang.org/x/term v0.47.0
)

require (
	github.com/clipperhouse/uax29/v2 v2.7.0 // indirect
	github.com/mattn/go-runewidth v0.0.31 // indirect
	golang.org/x/net v0.57.0 // indirect
)
