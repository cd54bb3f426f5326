// Package sock owns sockplay's sockets: real kernel file descriptors driven
// through Go's network poller, the per-process descriptor table that maps fd
// numbers to them, the snapshot of that table with the kernel's view of each
// socket, and the trace of every operation.
//
// The fd number a caller sees is the kernel's own: it is the number in
// /proc/self/fd, in `ss -p` and in lsof. Nothing here duplicates a descriptor
// (net.FileConn would), and nothing here knows about Lua.
//
// Blocking operations take a context. Cancelling it wakes the operation with
// ECANCELED; a per-socket timeout ends it with ETIMEDOUT; closing the fd from
// another goroutine wakes it with EBADF.
package sock
