package tx

import (
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
}

// readFacts lexes sql for its facts.
func readFacts(sql string) sqlFacts {
	f := sqlFacts{none: noStatement(sql), several: severalStatements(sql), reads: readsOnly(sql), unseen: unseenWrite(sql)}
	if changesSchema(sql) {
		f.unseen |= unseenSchema
	}
	if mayEnd(sql) {
		f.unseen |= unseenEnds
	}
	return f
}

// maxKnownTexts bounds the texts whose facts are remembered. Programs send a few hundred distinct texts at most (pgx
// caches 512 prepared statements per connection by default); one that builds texts without end fills the table once
// and lexes every later text, as it would without one.
const maxKnownTexts = 4096

// knownTexts remembers the facts of the texts seen, process-wide: work is often built anew for every transaction, and
// lexing a text is a few hundred nanoseconds to microseconds each time (of the order of 5 µs for a chain of five
// statements, a quarter of what pgxact adds to the messages it sends), where a look-up costs tens of nanoseconds.
// The facts depend on the text alone, so sharing them between goroutines and pools changes nothing but time.
var knownTexts struct {
	facts sync.Map // string → sqlFacts
	n     atomic.Int32
}

// factsOf returns sql's facts, lexing it only the first time while the table has room.
func factsOf(sql string) sqlFacts {
	if f, ok := knownTexts.facts.Load(sql); ok {
		return f.(sqlFacts)
	}
	f := readFacts(sql)
	// A race may store a few texts past the bound; Add counts them all, so the table stops growing soon after.
	if knownTexts.n.Load() < maxKnownTexts {
		if _, loaded := knownTexts.facts.LoadOrStore(sql, f); !loaded {
			knownTexts.n.Add(1)
		}
	}
	return f
}
