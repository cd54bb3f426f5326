// Command gofileserver is the yardstick for bench/http.sh: Go's net/http
// file server on a directory, printing "listening on HOST:PORT" first as
// sockplay's server scripts do.
//
//	go run ./bench/gofileserver -root DIR [-addr 127.0.0.1:0]
package main

import (
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
)

func main() {
	root := flag.String("root", ".", "directory to serve")
	addr := flag.String("addr", "127.0.0.1:0", "address to listen on")
	flag.Parse()
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("listening on %s\n", ln.Addr())
	os.Stdout.Sync()
	log.Fatal(http.Serve(ln, http.FileServer(http.Dir(*root))))
}
