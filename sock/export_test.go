package sock

// SetDirectHook sets the hook a direct system call runs just before it is
// made (see side.attemptDirect); nil removes it.
func SetDirectHook(f func()) { directHook = f }
