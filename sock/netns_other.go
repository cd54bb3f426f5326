//go:build unix && !linux

package sock

import "golang.org/x/sys/unix"

// Netns needs Linux network namespaces.
type Netns struct{}

var errNoNetns = &Error{Op: "netns", Code: "ENOSYS", Msg: "network namespaces need Linux", Errno: unix.ENOSYS}

func NewNetns() (*Netns, error)            { return nil, errNoNetns }
func NewNamedNetns(string) (*Netns, error) { return nil, errNoNetns }
func (n *Netns) SetLoss(float64) error     { return errNoNetns }
func (n *Netns) Loss() float64             { return 0 }
func (n *Netns) Name() string              { return "" }
func (n *Netns) FD() int                   { return -1 }
func (n *Netns) Do(func() error) error     { return errNoNetns }
func (n *Netns) Close() error              { return errNoNetns }
