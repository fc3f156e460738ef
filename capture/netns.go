package capture

import (
	"fmt"
	"runtime"

	"golang.org/x/sys/unix"
)

// inNetNS runs fn on an OS thread that is in the network namespace nsFd
// (an open /var/run/netns/NAME or /proc/PID/ns/net), so that sockets and
// files fn opens belong to it; 0 runs fn where the caller is.
func inNetNS(nsFd int, fn func() error) error {
	if nsFd == 0 {
		return fn()
	}
	runtime.LockOSThread()
	orig, err := unix.Open("/proc/thread-self/ns/net", unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("own network namespace: %w", err)
	}
	defer unix.Close(orig)
	if err := unix.Setns(nsFd, unix.CLONE_NEWNET); err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("entering network namespace: %w", err)
	}
	ferr := fn()
	if err := unix.Setns(orig, unix.CLONE_NEWNET); err != nil {
		// The thread stays locked and ends with this goroutine instead of
		// running other goroutines in the wrong namespace.
		return fmt.Errorf("leaving network namespace: %w", err)
	}
	runtime.UnlockOSThread()
	return ferr
}
