package netdelay

import (
	"os"
	"slices"
	"sync"
	"syscall"
	"time"
	"unsafe"
)

// waiter sleeps until a given time, to within some tens of microseconds, on a timerfd that Go's network poller
// watches, so that a sleeping waiter holds no thread. It belongs to one goroutine.
type waiter struct {
	f   *os.File        // nil if the timerfd could not be made: then Go's timers, about a millisecond coarse
	raw syscall.RawConn // f's, made once: SyscallConn allocates
}

type itimerspec struct {
	interval, value syscall.Timespec
}

func newWaiter() *waiter {
	fd, _, errno := syscall.Syscall(syscall.SYS_TIMERFD_CREATE, 1 /* CLOCK_MONOTONIC */, syscall.O_NONBLOCK|syscall.O_CLOEXEC, 0)
	if errno != 0 {
		return &waiter{}
	}
	f := os.NewFile(fd, "timerfd")
	raw, err := f.SyscallConn()
	if err != nil {
		_ = f.Close()
		return &waiter{}
	}
	return &waiter{f: f, raw: raw}
}

// waitUntil returns at due, give or take the timer's jitter: it aims early by the timer's typical lateness.
func (w *waiter) waitUntil(due time.Time) {
	d := time.Until(due) - lateness()
	if d <= 0 {
		return
	}
	if w.f == nil || !w.sleep(d) {
		time.Sleep(d)
	}
}

// sleep arms the timer for d and waits until it fires, reporting false if the timer could not be used. It arms the
// timer only once the poller is ready to report it, so that the first attempt to read the expiration count is not
// one that would fail with EAGAIN: two system calls a wait, not three (a wait per write, on the benchmark's CPUs).
func (w *waiter) sleep(d time.Duration) bool {
	armed, ok := false, false
	err := w.raw.Read(func(fd uintptr) bool {
		if !armed {
			armed = true
			ok = settime(fd, d)
			return !ok // not armed: nothing will fire, stop here
		}
		var expirations [8]byte
		_, _, errno := syscall.Syscall(syscall.SYS_READ, fd, uintptr(unsafe.Pointer(&expirations[0])), 8)
		// Only EAGAIN waits again. Any other outcome ends the wait, EINTR included: the timer may have fired unread, and
		// the poller, edge-triggered, would not report it twice.
		return errno != syscall.EAGAIN
	})
	return err == nil && ok
}

// lateness measures the timer with calibrationSleeps sleeps of calibrationSleep, and trusts at most maxLateness.
const (
	calibrationSleeps = 15
	calibrationSleep  = 100 * time.Microsecond
	maxLateness       = 100 * time.Microsecond
)

// lateness is the time by which a timerfd wakes its reader late, measured once per process: on an idle machine some
// tens of microseconds, which would add up to a tenth of a 0.5ms round trip. It is the least of the samples, not their
// median: load only ever adds to a wake-up's lateness, and a median measured during a burst of it would have every
// later wait aimed too early, round trips shorter than asked for.
var lateness = sync.OnceValue(func() time.Duration {
	w := newWaiter()
	defer w.close()
	if w.f == nil {
		return 0
	}
	var late []time.Duration
	for range calibrationSleeps {
		began := time.Now()
		if !w.sleep(calibrationSleep) {
			return 0
		}
		late = append(late, time.Since(began)-calibrationSleep)
	}
	return min(max(slices.Min(late), 0), maxLateness)
})

// settime sets the timer fd to fire once, d from now.
func settime(fd uintptr, d time.Duration) bool {
	spec := itimerspec{value: syscall.NsecToTimespec(d.Nanoseconds())}
	_, _, errno := syscall.Syscall6(syscall.SYS_TIMERFD_SETTIME, fd, 0, uintptr(unsafe.Pointer(&spec)), 0, 0, 0)
	return errno == 0
}

func (w *waiter) close() {
	if w.f != nil {
		_ = w.f.Close()
	}
}
