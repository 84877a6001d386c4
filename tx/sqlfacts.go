package tx

import (
	"strings"
	"sync"
	"sync/atomic"
)

// sqlFacts is what the runner reads from a statement's text: whether it holds no statement or several (invalid
// input for Exec, Query and QueryOne), whether it looks like it only reads (readsOnly), and what it tells the look
// and the round trips beyond that (unseen).
type sqlFacts struct {
	none, several bool
	reads         bool
	unseen        unseen
	write         unseen // unseenWrite's bits alone, without the ones changesSchema and mayEnd add to unseen
}

// readFacts lexes sql for its facts.
func readFacts(sql string) sqlFacts {
	u := unseenWrite(sql)
	f := sqlFacts{none: noStatement(sql), several: severalStatements(sql), reads: readsOnly(sql), unseen: u, write: u}
	if changesSchema(sql) {
		f.unseen |= unseenSchema
	}
	if mayEnd(sql) {
		f.unseen |= unseenEnds
	}
	return f
}

// mayEnd reports whether the text may end the transaction (mayEnd).
func (f sqlFacts) mayEnd() bool { return f.unseen&unseenEnds != 0 }

// maxKnownTexts and maxKnownBytes bound the texts whose facts are remembered, in number and in bytes of text kept.
// Programs send a few hundred distinct texts at most (pgx caches 512 prepared statements per connection by default);
// one that builds texts without end (values written into the text, VALUES lists of every length) fills the table
// once, with whichever texts came first, and lexes every later text, as it would without one. Remembered texts are
// kept for the life of the process, values written into them included.
const (
	maxKnownTexts = 4096
	maxKnownBytes = 1 << 20
)

// knownTexts remembers the facts of the texts seen, process-wide: work is often built anew for every transaction, and
// lexing a text is a few hundred nanoseconds to microseconds each time (of the order of 5 µs for a chain of five
// statements, a quarter of what pgxact adds to the messages it sends), where a look-up costs tens of nanoseconds.
// The facts depend on the text alone, so sharing them between goroutines and pools changes nothing but time.
var knownTexts struct {
	facts sync.Map     // string → sqlFacts
	n     atomic.Int32 // texts stored
	bytes atomic.Int64 // bytes of text stored, or reserved for storing
}

// factsOf returns sql's facts, lexing it only the first time while the table has room.
func factsOf(sql string) sqlFacts {
	if f, ok := knownTexts.facts.Load(sql); ok {
		return f.(sqlFacts)
	}
	f := readFacts(sql)
	// Racing callers may each store a text past maxKnownTexts, so n stops the table soon after its bound. Bytes are
	// reserved before storing, so the text kept never passes maxKnownBytes; a reservation that does not fit, or
	// whose text another caller stored meanwhile, is given back.
	if knownTexts.n.Load() >= maxKnownTexts {
		return f
	}
	size := int64(len(sql))
	if knownTexts.bytes.Add(size) > maxKnownBytes {
		knownTexts.bytes.Add(-size)
		return f
	}
	// A copy: sql may be a slice of a far larger string, which the table would otherwise keep alive.
	if _, loaded := knownTexts.facts.LoadOrStore(strings.Clone(sql), f); loaded {
		knownTexts.bytes.Add(-size)
	} else {
		knownTexts.n.Add(1)
	}
	return f
}
