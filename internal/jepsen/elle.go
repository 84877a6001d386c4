package jepsen

import (
	"fmt"
	"slices"
	"strings"
)

// ListTxn is one list-append transaction as its client saw it: the operations (reads filled in when Run
// succeeded) and the outcome.
type ListTxn struct {
	Ops     []Op
	Outcome Outcome
}

// Anomaly is one problem CheckList found.
type Anomaly struct {
	Kind   string // see the Kind constants
	Txns   []int  // the transactions involved, as indices into the history
	Detail string
}

// Anomaly kinds. The cycle kinds follow Adya: G0 is a cycle of write-write dependencies, G1c a cycle of write
// and read dependencies with at least one read, G2-item a cycle with at least one anti-dependency (a read that did
// not see a later write).
const (
	KindG0                = "G0"
	KindG1c               = "G1c"
	KindG2Item            = "G2-item"
	KindAbortedRead       = "G1a"                // a read saw a value appended by a transaction that failed
	KindIncompatibleOrder = "incompatible-order" // a read is not a prefix of the key's longest read
	KindDuplicateElement  = "duplicate-element"  // a read holds a value twice
	KindGarbageRead       = "garbage-read"       // a read holds a value nobody appended
	KindLostAppend        = "lost-append"        // an acknowledged append is missing from the final read
	KindDuplicateAppend   = "duplicate-append"   // the history appends a value twice (a generator bug)
)

// ListReport is CheckList's verdict.
type ListReport struct {
	Txns, Committed, Failed, Unknown int
	UnknownCommitted                 int            // ambiguous transactions whose appends were read: committed
	Edges                            map[string]int // dependency edges by kind: ww, wr, rw
	Counts                           map[string]int // anomalies by kind; for cycles, strongly connected components
	Anomalies                        []Anomaly      // up to maxPerKind of each kind
}

const maxPerKind = 5

func (r ListReport) String() string {
	var kinds []string
	for k, n := range r.Counts {
		kinds = append(kinds, fmt.Sprintf("%s %d", k, n))
	}
	slices.Sort(kinds)
	var b strings.Builder
	fmt.Fprintf(&b, "txns %d (committed %d, failed %d, unknown %d of which committed %d), edges ww %d wr %d rw %d; anomalies: [%s]",
		r.Txns, r.Committed, r.Failed, r.Unknown, r.UnknownCommitted, r.Edges["ww"], r.Edges["wr"], r.Edges["rw"],
		strings.Join(kinds, ", "))
	for _, a := range r.Anomalies {
		fmt.Fprintf(&b, "\n  %s %v: %s", a.Kind, a.Txns, a.Detail)
	}
	return b.String()
}

func (r *ListReport) add(a Anomaly) {
	r.Counts[a.Kind]++
	if r.Counts[a.Kind] <= maxPerKind {
		r.Anomalies = append(r.Anomalies, a)
	}
}

// Found reports how many anomalies of kind were found.
func (r ListReport) Found(kind string) int { return r.Counts[kind] }

// listChecker holds what CheckList derives from a history.
type listChecker struct {
	txns      []ListTxn
	report    ListReport
	writer    map[int]int   // appended value -> index of the transaction that appended it
	committed []bool        // by transaction index
	order     map[int][]int // key -> version order: its longest read
	graph     graph
}

// CheckList checks a list-append history. final is a read of every list taken after all transactions finished;
// it joins the reads that define each key's version order, and acknowledged appends must be in it.
func CheckList(txns []ListTxn, final map[int][]int) ListReport {
	c := &listChecker{
		txns:   txns,
		report: ListReport{Txns: len(txns), Edges: map[string]int{}, Counts: map[string]int{}},
		writer: make(map[int]int),
		order:  make(map[int][]int),
		graph:  graph{},
	}
	c.indexWrites()
	c.settleOutcomes(final)
	c.versionOrders(final)
	c.checkLostAppends(final)
	c.buildGraph()
	c.findCycles()
	return c.report
}

func (c *listChecker) indexWrites() {
	for i, t := range c.txns {
		for _, o := range t.Ops {
			if !o.Append {
				continue
			}
			if j, dup := c.writer[o.Value]; dup {
				c.report.add(Anomaly{Kind: KindDuplicateAppend, Txns: []int{j, i}, Detail: fmt.Sprintf("value %d", o.Value)})
				continue
			}
			c.writer[o.Value] = i
		}
	}
}

// reads calls f for every read whose result is known: those of acknowledged transactions.
func (c *listChecker) reads(f func(i int, o Op)) {
	for i, t := range c.txns {
		if t.Outcome != OK {
			continue
		}
		for _, o := range t.Ops {
			if !o.Append {
				f(i, o)
			}
		}
	}
}

// settleOutcomes decides which transactions committed: the acknowledged ones, and the ambiguous ones whose appends
// somebody read. A read of a failed transaction's append is an aborted read.
func (c *listChecker) settleOutcomes(final map[int][]int) {
	c.committed = make([]bool, len(c.txns))
	seen := func(reader int, values []int) {
		for _, v := range values {
			w, ok := c.writer[v]
			switch {
			case !ok:
				c.report.add(Anomaly{Kind: KindGarbageRead, Txns: nonNeg(reader), Detail: fmt.Sprintf("value %d", v)})
			case c.txns[w].Outcome == Failed:
				c.report.add(Anomaly{Kind: KindAbortedRead, Txns: append(nonNeg(reader), w),
					Detail: fmt.Sprintf("value %d of failed transaction %d was read", v, w)})
			case c.txns[w].Outcome == Unknown:
				c.committed[w] = true
			}
		}
	}
	c.reads(func(i int, o Op) { seen(i, o.List) })
	for _, k := range sortedKeys(final) {
		seen(-1, final[k])
	}
	for i, t := range c.txns {
		switch t.Outcome {
		case OK:
			c.committed[i] = true
			c.report.Committed++
		case Failed:
			c.report.Failed++
		case Unknown:
			c.report.Unknown++
			if c.committed[i] {
				c.report.UnknownCommitted++
				c.report.Committed++
			}
		}
	}
}

// nonNeg turns the final read's index, -1, into no transaction.
func nonNeg(i int) []int {
	if i < 0 {
		return nil
	}
	return []int{i}
}

func sortedKeys[V any](m map[int]V) []int {
	keys := make([]int, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// versionOrders takes each key's longest read as its version order and checks every read against it.
func (c *listChecker) versionOrders(final map[int][]int) {
	longest := func(k int, l []int) {
		if len(l) > len(c.order[k]) {
			c.order[k] = l
		}
	}
	c.reads(func(_ int, o Op) { longest(o.Key, o.List) })
	for k, l := range final {
		longest(k, l)
	}
	check := func(reader, k int, l []int) {
		if dup, ok := firstDuplicate(l); ok {
			c.report.add(Anomaly{Kind: KindDuplicateElement, Txns: nonNeg(reader), Detail: fmt.Sprintf("key %d holds %d twice: %v", k, dup, l)})
		}
		if o := c.order[k]; !isPrefix(l, o) {
			c.report.add(Anomaly{Kind: KindIncompatibleOrder, Txns: nonNeg(reader),
				Detail: fmt.Sprintf("key %d: read %v is not a prefix of %v", k, l, o)})
		}
	}
	c.reads(func(i int, o Op) { check(i, o.Key, o.List) })
	for _, k := range sortedKeys(final) {
		check(-1, k, final[k])
	}
}

func isPrefix(l, of []int) bool { return len(l) <= len(of) && slices.Equal(l, of[:len(l)]) }

func firstDuplicate(l []int) (int, bool) {
	seen := make(map[int]bool, len(l))
	for _, v := range l {
		if seen[v] {
			return v, true
		}
		seen[v] = true
	}
	return 0, false
}

// checkLostAppends requires every acknowledged append in the final read.
func (c *listChecker) checkLostAppends(final map[int][]int) {
	if final == nil {
		return
	}
	present := make(map[int]bool)
	for _, l := range final {
		for _, v := range l {
			present[v] = true
		}
	}
	for i, t := range c.txns {
		for _, o := range t.Ops {
			if t.Outcome == OK && o.Append && !present[o.Value] {
				c.report.add(Anomaly{Kind: KindLostAppend, Txns: []int{i}, Detail: fmt.Sprintf("append(%d, %d)", o.Key, o.Value)})
			}
		}
	}
}

// buildGraph adds the dependency edges between committed transactions: ww between consecutive versions of a key,
// wr from the writer of the last element a read saw to the reader, rw from the reader to the writer of the first
// element it did not see.
func (c *listChecker) buildGraph() {
	for _, k := range sortedKeys(c.order) {
		o := c.order[k]
		for i := 1; i < len(o); i++ {
			c.edge(c.writerOf(o[i-1]), c.writerOf(o[i]), edgeWW, k)
		}
	}
	c.reads(func(t int, o Op) {
		order := c.order[o.Key]
		if !isPrefix(o.List, order) {
			return // already reported; where it sits in the version order is anyone's guess
		}
		if n := len(o.List); n > 0 {
			c.edge(c.writerOf(o.List[n-1]), t, edgeWR, o.Key)
		}
		if len(o.List) < len(order) {
			c.edge(t, c.writerOf(order[len(o.List)]), edgeRW, o.Key)
		}
	})
}

// writerOf returns the committed transaction that appended v, or -1.
func (c *listChecker) writerOf(v int) int {
	if w, ok := c.writer[v]; ok && c.committed[w] {
		return w
	}
	return -1
}

func (c *listChecker) edge(from, to int, kind edgeKind, key int) {
	if from < 0 || to < 0 || from == to {
		return
	}
	c.graph.add(from, to, kind, key)
	c.report.Edges[kind.String()]++
}

// findCycles looks for cycles kind by kind: ww edges alone (G0); ww and wr with a wr edge (G1c); any edges with an
// rw edge (G2-item). Each strongly connected component of the subgraph with a qualifying edge counts once.
func (c *listChecker) findCycles() {
	levels := []struct {
		kind    string
		allowed edgeKind
		through edgeKind
	}{
		{KindG0, edgeWW, edgeWW},
		{KindG1c, edgeWW | edgeWR, edgeWR},
		{KindG2Item, edgeWW | edgeWR | edgeRW, edgeRW},
	}
	for _, l := range levels {
		for _, scc := range c.graph.components(l.allowed) {
			if cyc, ok := c.graph.cycleThrough(scc, l.allowed, l.through); ok {
				c.report.add(Anomaly{Kind: l.kind, Txns: cyc.txns(), Detail: cyc.String()})
			}
		}
	}
}
