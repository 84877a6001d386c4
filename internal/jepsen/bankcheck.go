package jepsen

import (
	"fmt"
	"strings"
)

// TransferResult is one transfer a client attempted, and what Run told it.
type TransferResult struct {
	Transfer
	Outcome Outcome
}

// BankHistory is everything a bank run observed: the transfers attempted, the successful reads and the final state.
type BankHistory struct {
	Bank      Bank
	Transfers []TransferResult
	Reads     [][]int64
	Final     BankState
}

// BankReport is CheckBank's verdict. The counters under "anomalies" must all be zero for a correct system.
type BankReport struct {
	Transfers, Acknowledged, Failed int
	Ambiguous                       int // outcome unknown to the client
	AmbiguousCommitted              int // of those, found once in the ledger
	AmbiguousAbsent                 int // of those, not in the ledger
	Reads                           int

	// anomalies
	WrongTotals      int // reads, the final state included, whose sum is not the bank's total
	NegativeBalances int // reads, the final state included, with a negative balance
	Lost             int // acknowledged transfers missing from the ledger
	Duplicated       int // transfers in the ledger more than once
	Phantom          int // transfers in the ledger whose Run failed definitely
	Unattempted      int // ledger entries no client attempted, or that differ from what was attempted
	LedgerMismatch   int // accounts whose final balance differs from initial plus the ledger's net flow

	Problems []string // the first few anomalies of each kind, described
	Suspects []int64  // ids of the transfers behind lost, duplicated, phantom and unattempted anomalies
	kept     map[string]int
}

// maxProblems bounds the descriptions kept of each kind; the counters count everything.
const maxProblems = 5

// Anomalies is the number of anomalies of every kind.
func (r BankReport) Anomalies() int {
	return r.WrongTotals + r.NegativeBalances + r.Lost + r.Duplicated + r.Phantom + r.Unattempted + r.LedgerMismatch
}

func (r BankReport) String() string {
	return fmt.Sprintf("transfers %d (ok %d, failed %d, ambiguous %d: committed %d, absent %d), reads %d; "+
		"anomalies: wrong totals %d, negative %d, lost %d, duplicated %d, phantom %d, unattempted %d, ledger mismatch %d%s",
		r.Transfers, r.Acknowledged, r.Failed, r.Ambiguous, r.AmbiguousCommitted, r.AmbiguousAbsent, r.Reads,
		r.WrongTotals, r.NegativeBalances, r.Lost, r.Duplicated, r.Phantom, r.Unattempted, r.LedgerMismatch,
		problemList(r.Problems))
}

func problemList(ps []string) string {
	if len(ps) == 0 {
		return ""
	}
	return "\n  " + strings.Join(ps, "\n  ")
}

func (r *BankReport) problem(kind, format string, args ...any) {
	if r.kept == nil {
		r.kept = make(map[string]int)
	}
	if r.kept[kind]++; r.kept[kind] <= maxProblems {
		r.Problems = append(r.Problems, kind+": "+fmt.Sprintf(format, args...))
	}
}

// CheckBank checks a bank history. Ambiguous transfers may be in the ledger once or not at all; whichever it is,
// totals must hold and the final balances must agree with the ledger.
func CheckBank(h BankHistory) BankReport {
	r := BankReport{Transfers: len(h.Transfers), Reads: len(h.Reads)}
	for i, read := range h.Reads {
		r.checkRead(h.Bank, fmt.Sprintf("read %d", i), read)
	}
	r.checkRead(h.Bank, "final state", h.Final.Balances)
	r.checkLedger(h)
	r.checkFlow(h.Bank, h.Final)
	return r
}

func (r *BankReport) checkRead(b Bank, what string, balances []int64) {
	if len(balances) != b.Accounts {
		r.WrongTotals++
		r.problem("wrong total", "%s: %d accounts, want %d", what, len(balances), b.Accounts)
		return
	}
	var sum int64
	negative := false
	for _, v := range balances {
		sum += v
		negative = negative || v < 0
	}
	if sum != b.Total() {
		r.WrongTotals++
		r.problem("wrong total", "%s: total %d, want %d: %v", what, sum, b.Total(), balances)
	}
	if negative {
		r.NegativeBalances++
		r.problem("negative", "%s: negative balance: %v", what, balances)
	}
}

func (r *BankReport) checkLedger(h BankHistory) {
	seen := make(map[int64]int)
	attempted := make(map[int64]Transfer, len(h.Transfers))
	for _, t := range h.Transfers {
		attempted[t.ID] = t.Transfer
	}
	for _, e := range h.Final.Ledger {
		seen[e.ID]++
		if a, ok := attempted[e.ID]; !ok || a != e {
			r.Unattempted++
			r.Suspects = append(r.Suspects, e.ID)
			r.problem("unattempted", "ledger entry %+v was not attempted as such", e)
		}
	}
	for _, t := range h.Transfers {
		r.checkTransfer(t, seen[t.ID])
	}
}

func (r *BankReport) checkTransfer(t TransferResult, n int) {
	if n > 1 {
		r.Duplicated++
		r.Suspects = append(r.Suspects, t.ID)
		r.problem("duplicated", "transfer %d (%s) is in the ledger %d times", t.ID, t.Outcome, n)
	}
	switch t.Outcome {
	case OK:
		r.Acknowledged++
		if n == 0 {
			r.Lost++
			r.Suspects = append(r.Suspects, t.ID)
			r.problem("lost", "acknowledged transfer %d is not in the ledger", t.ID)
		}
	case Failed:
		r.Failed++
		if n > 0 {
			r.Phantom++
			r.Suspects = append(r.Suspects, t.ID)
			r.problem("phantom", "transfer %d failed but is in the ledger", t.ID)
		}
	case Unknown:
		r.Ambiguous++
		if n > 0 {
			r.AmbiguousCommitted++
		} else {
			r.AmbiguousAbsent++
		}
	}
}

// checkFlow compares the final balances with what the ledger says they must be.
func (r *BankReport) checkFlow(b Bank, s BankState) {
	if len(s.Balances) != b.Accounts {
		return // already reported
	}
	want := make([]int64, b.Accounts)
	for i := range want {
		want[i] = b.Initial
	}
	for _, e := range s.Ledger {
		if e.From < 1 || e.From > b.Accounts || e.To < 1 || e.To > b.Accounts {
			continue // reported as unattempted
		}
		want[e.From-1] -= e.Amount
		want[e.To-1] += e.Amount
	}
	for i, v := range s.Balances {
		if v != want[i] {
			r.LedgerMismatch++
			r.problem("ledger mismatch", "account %d: balance %d, ledger says %d", i+1, v, want[i])
		}
	}
}
