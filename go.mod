module sockplay

go 1.26.0

require golang.org/x/sys v0.49.0

require (
	github.com/miekg/dns v1.1.73 // indirect
	github.com/yuin/gopher-lua v1.1.2 // indirect
	golang.org/x/net v0.57.0 // indirect
	golang.org/x/term v0.47.0 // indirect
)
