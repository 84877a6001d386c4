package jepsen_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/pgxact/pgxact/internal/jepsen"
)

// bankCase builds histories for the checker's own tests: three accounts of 100.
func bankCase(transfers []jepsen.TransferResult, reads [][]int64, balances []int64, ledger ...jepsen.Transfer) jepsen.BankHistory {
	return jepsen.BankHistory{
		Bank:      jepsen.Bank{Accounts: 3, Initial: 100},
		Transfers: transfers,
		Reads:     reads,
		Final:     jepsen.BankState{Balances: balances, Ledger: ledger},
	}
}

func TestCheckBank(t *testing.T) {
	t1 := jepsen.Transfer{ID: 1, From: 1, To: 2, Amount: 10}
	t2 := jepsen.Transfer{ID: 2, From: 2, To: 3, Amount: 30}
	ok := func(tr jepsen.Transfer) jepsen.TransferResult {
		return jepsen.TransferResult{Transfer: tr, Outcome: jepsen.OK}
	}
	failed := func(tr jepsen.Transfer) jepsen.TransferResult {
		return jepsen.TransferResult{Transfer: tr, Outcome: jepsen.Failed}
	}
	unknown := func(tr jepsen.Transfer) jepsen.TransferResult {
		return jepsen.TransferResult{Transfer: tr, Outcome: jepsen.Unknown}
	}
	cases := []struct {
		name  string
		h     jepsen.BankHistory
		check func(*testing.T, jepsen.BankReport)
	}{
		{"a correct history has no anomalies",
			bankCase([]jepsen.TransferResult{ok(t1), failed(t2)}, [][]int64{{100, 100, 100}, {90, 110, 100}}, []int64{90, 110, 100}, t1),
			func(t *testing.T, r jepsen.BankReport) {
				require.Zero(t, r.Anomalies(), "%v", r)
				require.Equal(t, 1, r.Acknowledged)
				require.Equal(t, 1, r.Failed)
			}},
		{"a read with the wrong total is flagged",
			bankCase(nil, [][]int64{{100, 100, 90}}, []int64{100, 100, 100}),
			func(t *testing.T, r jepsen.BankReport) { require.Equal(t, 1, r.WrongTotals) }},
		{"a read with missing accounts is flagged",
			bankCase(nil, [][]int64{{}}, []int64{100, 100, 100}),
			func(t *testing.T, r jepsen.BankReport) { require.Equal(t, 1, r.WrongTotals) }},
		{"a negative balance is flagged even when the total holds",
			bankCase(nil, [][]int64{{-10, 210, 100}}, []int64{100, 100, 100}),
			func(t *testing.T, r jepsen.BankReport) {
				require.Equal(t, 1, r.NegativeBalances)
				require.Zero(t, r.WrongTotals)
			}},
		{"an acknowledged transfer missing from the ledger is lost",
			bankCase([]jepsen.TransferResult{ok(t1)}, nil, []int64{90, 110, 100}),
			func(t *testing.T, r jepsen.BankReport) {
				require.Equal(t, 1, r.Lost)
				require.Equal(t, 2, r.LedgerMismatch) // money moved without a ledger entry
			}},
		{"a transfer in the ledger twice is duplicated",
			bankCase([]jepsen.TransferResult{ok(t1)}, nil, []int64{80, 120, 100}, t1, t1),
			func(t *testing.T, r jepsen.BankReport) {
				require.Equal(t, 1, r.Duplicated)
				require.Zero(t, r.LedgerMismatch)
				require.Equal(t, []int64{1}, r.Suspects)
			}},
		{"a failed transfer in the ledger is a phantom",
			bankCase([]jepsen.TransferResult{failed(t1)}, nil, []int64{90, 110, 100}, t1),
			func(t *testing.T, r jepsen.BankReport) { require.Equal(t, 1, r.Phantom) }},
		{"ambiguous transfers may go either way, and are counted",
			bankCase([]jepsen.TransferResult{unknown(t1), unknown(t2)}, nil, []int64{90, 110, 100}, t1),
			func(t *testing.T, r jepsen.BankReport) {
				require.Zero(t, r.Anomalies(), "%v", r)
				require.Equal(t, 2, r.Ambiguous)
				require.Equal(t, 1, r.AmbiguousCommitted)
				require.Equal(t, 1, r.AmbiguousAbsent)
			}},
		{"a ledger entry nobody attempted is flagged",
			bankCase(nil, nil, []int64{90, 110, 100}, t1),
			func(t *testing.T, r jepsen.BankReport) { require.Equal(t, 1, r.Unattempted) }},
		{"final balances that disagree with the ledger are flagged",
			bankCase([]jepsen.TransferResult{ok(t1)}, nil, []int64{95, 105, 100}, t1),
			func(t *testing.T, r jepsen.BankReport) { require.Equal(t, 2, r.LedgerMismatch) }},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) { c.check(t, jepsen.CheckBank(c.h)) })
	}
}
