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
//
// A caller that runs an interpreter under a lock (the Lua host) can hang a
// Parker on the context: an operation tells it only when it must wait in
// the poller, so a call that completes at once keeps the lock. A Parker
// that is also a CancelWatcher takes over waking a cancelled wait, which
// saves every wait a context.AfterFunc. Each direction of a socket (side.go)
// admits one waiter at a time and reuses its wait state, so a stream read
// or write allocates nothing.
package sock
