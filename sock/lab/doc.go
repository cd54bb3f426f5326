// Package lab builds small networks out of real kernel parts: hosts that
// are network namespaces of sockplay's own, links between them that carry
// real Ethernet frames, routers that forward, NAT, and shaping (rate,
// delay, jitter, loss, duplication, reordering) that real kernel TCP feels.
//
// A host is a network namespace with its loopback up, named
// sockplay-PID-LAB-HOST under /run/netns so that `ip netns exec` reaches it
// from a shell. Sockets open inside it through sock.Netns; programs run
// inside it (Host.Start) with the lab's names in their /etc/hosts.
//
// A link is a TAP device at each end, eth0, eth1 ... inside each host,
// with sockplay moving the frames between the two in user space. This
// kernel has no netem, so delay, jitter, duplication, reordering and loss
// happen on that path; rate is the kernel's tbf on the sending device.
// Every link takes that path, shaped or not, so that shaping can change
// while connections run without a device being swapped under them.
//
// Nothing outlives Close: the devices go with their descriptors, the
// namespaces with their names and the last socket inside, the NAT rules
// with the namespaces. What a process killed by SIGKILL leaves (names under
// /run/netns carrying its pid, programs it ran inside) is removed the next
// time a lab is made.
package lab
