// Package wire shows the packets that sockplay's socket calls cause: it
// captures them on real interfaces (AF_PACKET), filters them in the kernel
// (classic BPF compiled from tcpdump's filter language), prints them as
// tcpdump -nn does, ties each one to the descriptor table entry and the call
// that caused it, reads and writes pcap files, and draws two views of them:
// one packet layer by layer (the OSI walk) and one connection as a ladder
// diagram.
//
// Decoding is gopacket's (its pure-Go layers and pcapgo); nothing here
// knows about Lua.
package wire
