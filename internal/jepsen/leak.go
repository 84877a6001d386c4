package jepsen

import (
	"bytes"
	"runtime"
	"strconv"
	"strings"
	"time"
)

// GoroutineSnapshot records which goroutines were alive at one moment, so that goroutines started afterwards and
// never finished can be found. The zero value is an empty snapshot: every goroutine counts as new.
type GoroutineSnapshot struct {
	ids map[uint64]bool
}

// SnapshotGoroutines records the goroutines alive now.
func SnapshotGoroutines() GoroutineSnapshot {
	s := GoroutineSnapshot{ids: make(map[uint64]bool)}
	for _, g := range goroutines() {
		s.ids[g.id] = true
	}
	return s
}

// ignoredFrames mark goroutines that belong to the runtime or the testing package rather than to the code under
// test: test goroutines themselves (including the caller of Leaked), fuzzing coordination and signal handling.
var ignoredFrames = []string{
	"testing.tRunner(",
	"testing.(*F).Fuzz",
	"testing.runFuzzing(",
	"testing.(*M).Run(",
	"os/signal.signal_recv(",
	"os/signal.loop(",
	"runtime.ensureSigM",
}

// Leaked waits up to wait for the goroutines started since s to finish, and returns the stacks of those still
// running, apart from the runtime's and the testing package's own. Goroutines wind down asynchronously (a closed
// connection's reader, a pool's destructor), which is why Leaked polls instead of looking once.
func (s GoroutineSnapshot) Leaked(wait time.Duration) []string {
	deadline := time.Now().Add(wait)
	for {
		leaked := s.newSince()
		if len(leaked) == 0 || time.Now().After(deadline) {
			return leaked
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func (s GoroutineSnapshot) newSince() []string {
	var out []string
	for _, g := range goroutines() {
		if !s.ids[g.id] && !ignored(g.stack) {
			out = append(out, g.stack)
		}
	}
	return out
}

func ignored(stack string) bool {
	for _, f := range ignoredFrames {
		if strings.Contains(stack, f) {
			return true
		}
	}
	return false
}

type goroutine struct {
	id    uint64
	stack string
}

// goroutines parses runtime.Stack's dump of all goroutines: blocks separated by blank lines, each starting with
// "goroutine <id> [<state>]:".
func goroutines() []goroutine {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	var out []goroutine
	for _, block := range bytes.Split(buf, []byte("\n\n")) {
		if g, ok := parseGoroutine(string(block)); ok {
			out = append(out, g)
		}
	}
	return out
}

func parseGoroutine(block string) (goroutine, bool) {
	rest, ok := strings.CutPrefix(block, "goroutine ")
	if !ok {
		return goroutine{}, false
	}
	idText, _, ok := strings.Cut(rest, " ")
	if !ok {
		return goroutine{}, false
	}
	id, err := strconv.ParseUint(idText, 10, 64)
	if err != nil {
		return goroutine{}, false
	}
	return goroutine{id: id, stack: block}, true
}
