package main

import (
	"fmt"
	"io"
	"os"

	"github.com/pgxact/pgxact/bench/internal/harness"
)

// progress reports on stderr which cell and slice is running. On a terminal it rewrites one line; elsewhere (when
// asked for with -progress) it writes a line per cell. A disabled progress writes nothing.
type progress struct {
	w       io.Writer // nil: disabled
	tty     bool
	cells   int
	current int
}

func newProgress(w io.Writer, enabled bool, cells int) *progress {
	if !enabled {
		return &progress{cells: cells}
	}
	return &progress{w: w, tty: isTerminal(w), cells: cells}
}

// cell starts the next cell and returns the callback the harness calls before each slice.
func (p *progress) cell(workload string, workers int) func(harness.Progress) {
	p.current++
	if p.w == nil {
		return nil
	}
	prefix := fmt.Sprintf("[%d/%d] %s, %d workers", p.current, p.cells, workload, workers)
	if !p.tty {
		fmt.Fprintln(p.w, prefix)
		return nil
	}
	return func(s harness.Progress) {
		fmt.Fprintf(p.w, "\r\033[K%s: round %d/%d, %s", prefix, s.Round, s.Rounds, s.Impl)
	}
}

// done ends a rewritten line.
func (p *progress) done() {
	if p.w != nil && p.tty {
		fmt.Fprint(p.w, "\r\033[K")
	}
}

// isTerminal reports whether w is a character device, which is how a terminal looks without importing x/term.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	info, err := f.Stat()
	return err == nil && info.Mode()&os.ModeCharDevice != 0
}
