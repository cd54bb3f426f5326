// Package dns is sockplay's DNS on its own sockets: the stub resolver that
// getaddrinfo is (the hosts file, then resolv.conf's servers with its search
// list and ndots), the exchange of a question with one server (UDP, and TCP
// again when the answer comes back truncated), and an authoritative server
// for a zone or a handler.
//
// Every socket it opens is an entry of a sock.Table opened under the
// caller's context: it belongs to the caller's task, shows in the table's
// snapshot, is traced and counted, waits through the caller's sock.Parker
// and ends when the caller's context is cancelled. The trace renders its
// payloads as tcpdump prints DNS ("12345+ A? www.test." on the way out,
// "12345*- 1/0/0 A 127.0.0.5" on the way back). miekg/dns only packs and
// unpacks the messages.
//
// Messages and records are handed to and from scripts as Tables: plain Go
// values (strings, numbers, booleans, lists and named fields) that a
// binding converts to its language's tables in one generic step.
package dns
