package faultproxy

import "sync/atomic"

// Stats is a snapshot of a proxy's counters since [Start].
type Stats struct {
	// Conns counts client connections accepted.
	Conns uint64
	// Cuts counts connections closed by a rule's CutBefore or CutAfter.
	Cuts uint64
	// Writes counts completed writes of client bytes to server sockets, startup packets included.
	Writes uint64
	// Messages counts frontend messages shown to the rule. Messages forwarded after a CutAfter in the same
	// read are not shown and not counted.
	Messages uint64
}

// counters are the live values behind [Stats].
type counters struct {
	conns, cuts, writes, messages atomic.Uint64
}

func (c *counters) snapshot() Stats {
	return Stats{
		Conns:    c.conns.Load(),
		Cuts:     c.cuts.Load(),
		Writes:   c.writes.Load(),
		Messages: c.messages.Load(),
	}
}
