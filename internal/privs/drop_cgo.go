//go:build linux && cgo

package privs

/*
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>
#include <linux/capability.h>

static uint64_t rs_keep;
static int rs_last_cap;
static int rs_drop_bset;
static volatile int rs_done;
static volatile int rs_err;

// rs_apply reduces the calling thread's capabilities. Raw system calls
// only, as it runs in a signal handler.
static int rs_apply(void) {
	struct __user_cap_header_struct hdr;
	struct __user_cap_data_struct data[2];
	memset(&hdr, 0, sizeof hdr);
	memset(data, 0, sizeof data);
	hdr.version = _LINUX_CAPABILITY_VERSION_3;
	if (syscall(SYS_capget, &hdr, data) != 0) return errno;
	uint64_t eff = (uint64_t)data[0].effective | (uint64_t)data[1].effective << 32;
	// A thread cloned from one already done inherited its state (and no
	// longer has CAP_SETPCAP to change the bounding set).
	int fresh = (eff & (1ULL << CAP_SETPCAP)) != 0;
	if (rs_drop_bset && fresh) {
		for (int c = 0; c <= rs_last_cap; c++) {
			if (rs_keep & (1ULL << c)) continue;
			if (syscall(SYS_prctl, PR_CAPBSET_DROP, c, 0, 0, 0) != 0 && errno != EINVAL) return errno;
		}
	}
	if (syscall(SYS_prctl, PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) != 0 && errno != EINVAL) return errno;
	if (syscall(SYS_prctl, PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) return errno;
	memset(&hdr, 0, sizeof hdr);
	memset(data, 0, sizeof data);
	hdr.version = _LINUX_CAPABILITY_VERSION_3;
	data[0].effective = data[0].permitted = (uint32_t)rs_keep;
	data[1].effective = data[1].permitted = (uint32_t)(rs_keep >> 32);
	if (syscall(SYS_capset, &hdr, data) != 0) return errno;
	return 0;
}

static void rs_handler(int sig, siginfo_t *si, void *uc) {
	int saved = errno;
	rs_err = rs_apply();
	__atomic_store_n(&rs_done, 1, __ATOMIC_SEQ_CST);
	errno = saved;
}

#define RS_MAX_THREADS 8192

// rs_drop_all signals every other thread of the process, one at a time,
// to run rs_apply, repeating the listing until no new thread appears
// (threads made meanwhile by a thread already done inherit its state), then
// runs rs_apply on the calling thread. It returns 0, an errno, or -1 with
// *bad set to a thread that did not answer within 2 s.
static int rs_drop_all(uint64_t keep, int last_cap, int drop_bset, int sig, int *bad) {
	static int done[RS_MAX_THREADS];
	int ndone = 0, result = 0;
	rs_keep = keep;
	rs_last_cap = last_cap;
	rs_drop_bset = drop_bset;
	struct sigaction sa, old;
	memset(&sa, 0, sizeof sa);
	sa.sa_sigaction = rs_handler;
	sa.sa_flags = SA_SIGINFO | SA_ONSTACK | SA_RESTART;
	sigemptyset(&sa.sa_mask);
	if (sigaction(sig, &sa, &old) != 0) return errno;
	pid_t pid = getpid(), self = (pid_t)syscall(SYS_gettid);
	for (int round = 0; round < 64 && result == 0; round++) {
		int found = 0;
		DIR *d = opendir("/proc/self/task");
		if (d == NULL) { result = errno; break; }
		struct dirent *e;
		while (result == 0 && (e = readdir(d)) != NULL) {
			if (e->d_name[0] == '.') continue;
			pid_t tid = (pid_t)atoi(e->d_name);
			if (tid == self) continue;
			int seen = 0;
			for (int i = 0; i < ndone; i++) if (done[i] == tid) { seen = 1; break; }
			if (seen) continue;
			if (ndone == RS_MAX_THREADS) { result = E2BIG; break; }
			found = 1;
			__atomic_store_n(&rs_done, 0, __ATOMIC_SEQ_CST);
			rs_err = 0;
			if (syscall(SYS_tgkill, pid, tid, sig) != 0) {
				if (errno == ESRCH) { done[ndone++] = tid; continue; } // it ended
				result = errno;
				break;
			}
			struct timespec ms = {0, 1000000};
			int waited = 0;
			while (!__atomic_load_n(&rs_done, __ATOMIC_SEQ_CST)) {
				if (++waited > 2000) { *bad = tid; result = -1; break; }
				nanosleep(&ms, NULL);
			}
			if (result == 0 && rs_err != 0) result = rs_err;
			done[ndone++] = tid;
		}
		closedir(d);
		if (!found) break;
	}
	if (result == 0) result = rs_apply();
	sigaction(sig, &old, NULL);
	return result;
}

static int rs_signal(void) { return SIGRTMAX - 2; }
*/
import "C"

import (
	"fmt"
	"runtime"
	"syscall"
)

// dropAll applies the drop to every thread (see rs_drop_all).
func dropAll(keep uint64, lastCap int, dropBounding bool) error {
	// The calling thread is handled last, directly: keep the goroutine on
	// it. The runtime may then give other goroutines new threads; those are
	// cloned from threads already done, or found by the next listing.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	var bad C.int
	bset := C.int(0)
	if dropBounding {
		bset = 1
	}
	switch r := C.rs_drop_all(C.uint64_t(keep), C.int(lastCap), bset, C.rs_signal(), &bad); {
	case r == -1:
		return fmt.Errorf("thread %d did not answer the signal", int(bad))
	case r != 0:
		return syscall.Errno(r)
	}
	return nil
}
