package jepsen

import (
	"errors"

	"github.com/pgxact/pgxact/tx"
)

// Outcome is what a client learned about a transaction it ran.
type Outcome int

const (
	// OK: Run returned nil, so the transaction committed.
	OK Outcome = iota
	// Failed: Run returned an error other than tx.ErrCommitUnknown, so the transaction must not have committed.
	Failed
	// Unknown: Run returned an error wrapping tx.ErrCommitUnknown; the transaction may or may not have committed.
	Unknown
)

// OutcomeOf classifies the error Run returned.
func OutcomeOf(err error) Outcome {
	switch {
	case err == nil:
		return OK
	case errors.Is(err, tx.ErrCommitUnknown):
		return Unknown
	default:
		return Failed
	}
}

func (o Outcome) String() string {
	switch o {
	case OK:
		return "ok"
	case Failed:
		return "failed"
	case Unknown:
		return "unknown"
	default:
		return "Outcome(?)"
	}
}
