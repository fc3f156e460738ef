// Package privs checks and drops rasentry's Linux capabilities. Live and
// inline modes need CAP_NET_RAW (AF_PACKET sockets, raw sockets for resets)
// and CAP_NET_ADMIN (NFQUEUE, nftables, promiscuous mode); once their
// sockets are open, DropPrivileges keeps those two and gives up every other
// capability, for every thread of the process, and sets no_new_privs so that
// nothing can be regained through exec.
//
// Capabilities belong to threads, not processes, and a Go program runs on
// many threads. Without cgo the Go runtime applies a syscall to all threads
// (syscall.AllThreadsSyscall); with cgo, as rasentry is built, it cannot, so
// this package does what libcap's psx does: it signals each thread in turn
// and the thread drops its own capabilities in the signal handler, then it
// drops the caller's, and checks /proc that every thread has the same
// capability sets.
package privs

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
)

// Cap is a Linux capability number (linux/capability.h).
type Cap uint

// The capabilities rasentry uses.
const (
	CapSetPCap  Cap = 8
	CapNetAdmin Cap = 12
	CapNetRaw   Cap = 13
)

var capNames = map[Cap]string{
	0: "CAP_CHOWN", 1: "CAP_DAC_OVERRIDE", 2: "CAP_DAC_READ_SEARCH", 3: "CAP_FOWNER", 4: "CAP_FSETID",
	5: "CAP_KILL", 6: "CAP_SETGID", 7: "CAP_SETUID", 8: "CAP_SETPCAP", 10: "CAP_NET_BIND_SERVICE",
	12: "CAP_NET_ADMIN", 13: "CAP_NET_RAW", 21: "CAP_SYS_ADMIN",
}

// String returns the capability's name ("CAP_NET_RAW").
func (c Cap) String() string {
	if n, ok := capNames[c]; ok {
		return n
	}
	return "CAP_" + strconv.Itoa(int(c))
}

// Set is a set of capabilities as a bit mask (bit n is capability n).
type Set uint64

// Has reports whether c is in the set.
func (s Set) Has(c Cap) bool { return s&(1<<c) != 0 }

// Of returns the set of the given capabilities.
func Of(caps ...Cap) Set {
	var s Set
	for _, c := range caps {
		s |= 1 << c
	}
	return s
}

// State is one thread's capability sets, as /proc/<tid>/status shows them.
type State struct {
	Effective, Permitted, Inheritable, Bounding, Ambient Set
	NoNewPrivs                                           bool
}

// ThreadState reads the calling thread's capability sets.
func ThreadState() (State, error) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	return readState("/proc/thread-self/status")
}

// ProcessStates reads the capability sets of every thread of the process,
// by thread id.
func ProcessStates() (map[int]State, error) {
	dirs, err := os.ReadDir("/proc/self/task")
	if err != nil {
		return nil, err
	}
	out := make(map[int]State, len(dirs))
	for _, d := range dirs {
		tid, err := strconv.Atoi(d.Name())
		if err != nil {
			continue
		}
		st, err := readState(filepath.Join("/proc/self/task", d.Name(), "status"))
		if errors.Is(err, os.ErrNotExist) {
			continue // the thread ended meanwhile
		}
		if err != nil {
			return nil, err
		}
		out[tid] = st
	}
	return out, nil
}

func readState(path string) (State, error) {
	f, err := os.Open(path)
	if err != nil {
		return State{}, err
	}
	defer f.Close()
	return parseStatus(bufio.NewScanner(f))
}

// parseStatus reads the Cap* and NoNewPrivs lines of a status file.
func parseStatus(sc *bufio.Scanner) (State, error) {
	var st State
	seen := 0
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		v = strings.TrimSpace(v)
		var dst *Set
		switch k {
		case "CapEff":
			dst = &st.Effective
		case "CapPrm":
			dst = &st.Permitted
		case "CapInh":
			dst = &st.Inheritable
		case "CapBnd":
			dst = &st.Bounding
		case "CapAmb":
			dst = &st.Ambient
		case "NoNewPrivs":
			st.NoNewPrivs = v == "1"
			continue
		default:
			continue
		}
		n, err := strconv.ParseUint(v, 16, 64)
		if err != nil {
			return st, fmt.Errorf("privs: %s: %q: %w", k, v, err)
		}
		*dst = Set(n)
		seen++
	}
	if err := sc.Err(); err != nil {
		return st, err
	}
	if seen < 4 {
		return st, errors.New("privs: no capability lines in the status file")
	}
	return st, nil
}

// MissingError says which capabilities a mode needs and the process lacks.
type MissingError struct {
	Need, Missing []Cap
}

func (e *MissingError) Error() string {
	names := func(cs []Cap) string {
		s := make([]string, len(cs))
		for i, c := range cs {
			s[i] = c.String()
		}
		return strings.Join(s, " and ")
	}
	lower := make([]string, len(e.Need))
	for i, c := range e.Need {
		lower[i] = strings.ToLower(c.String())
	}
	return fmt.Sprintf("rasentry needs %s; this process lacks %s: run it as root, or grant them with "+
		"`setcap %s+ep /path/to/rasentry`", names(e.Need), names(e.Missing), strings.Join(lower, ","))
}

// CheckCapabilities returns a *MissingError naming each capability of need
// that the process does not have in its effective set (nil when it has
// them all).
func CheckCapabilities(need ...Cap) error {
	st, err := ThreadState()
	if err != nil {
		return fmt.Errorf("privs: reading own capabilities: %w", err)
	}
	var missing []Cap
	for _, c := range need {
		if !st.Effective.Has(c) {
			missing = append(missing, c)
		}
	}
	if len(missing) > 0 {
		return &MissingError{Need: need, Missing: missing}
	}
	return nil
}

// DropPrivileges keeps CAP_NET_RAW and CAP_NET_ADMIN and drops every other
// capability: see Drop.
func DropPrivileges() error { return Drop(CapNetRaw, CapNetAdmin) }

// Drop reduces every thread of the process to the capabilities in keep:
// effective and permitted become keep; inheritable and ambient become
// empty; the bounding set loses every other capability (when the process
// may change it, i.e. has CAP_SETPCAP); no_new_privs is set. The process
// must have every capability of keep. It checks the result on every thread
// and returns an error if one differs.
func Drop(keep ...Cap) error {
	want := Of(keep...)
	if err := CheckCapabilities(keep...); err != nil {
		return err
	}
	st, err := ThreadState()
	if err != nil {
		return err
	}
	last, err := lastCap()
	if err != nil {
		return err
	}
	if err := dropAll(uint64(want), last, st.Effective.Has(CapSetPCap)); err != nil {
		return fmt.Errorf("privs: dropping capabilities: %w", err)
	}
	states, err := ProcessStates()
	if err != nil {
		return fmt.Errorf("privs: checking threads: %w", err)
	}
	for tid, s := range states {
		if s.Effective != want || s.Permitted != want || s.Inheritable != 0 || s.Ambient != 0 || !s.NoNewPrivs {
			return fmt.Errorf("privs: thread %d kept capabilities: effective %#x permitted %#x (want %#x), no_new_privs %v",
				tid, uint64(s.Effective), uint64(s.Permitted), uint64(want), s.NoNewPrivs)
		}
	}
	return nil
}

// lastCap returns the highest capability number the kernel knows.
func lastCap() (int, error) {
	b, err := os.ReadFile("/proc/sys/kernel/cap_last_cap")
	if err != nil {
		return 0, fmt.Errorf("privs: %w", err)
	}
	n, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || n < 0 || n > 63 {
		return 0, fmt.Errorf("privs: cap_last_cap %q", b)
	}
	return n, nil
}
