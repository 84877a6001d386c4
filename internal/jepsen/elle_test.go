package jepsen_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/pgxact/pgxact/internal/jepsen"
)

func app(k, v int) jepsen.Op             { return jepsen.Op{Append: true, Key: k, Value: v} }
func rd(k int, l ...int) jepsen.Op       { return jepsen.Op{Key: k, List: append([]int{}, l...)} }
func ok(ops ...jepsen.Op) jepsen.ListTxn { return jepsen.ListTxn{Ops: ops, Outcome: jepsen.OK} }

func TestCheckList(t *testing.T) {
	cases := []struct {
		name  string
		txns  []jepsen.ListTxn
		final map[int][]int
		want  map[string]int
	}{
		{
			name:  "a serial history has no anomalies",
			txns:  []jepsen.ListTxn{ok(app(1, 10)), ok(rd(1, 10), app(1, 11)), ok(rd(1, 10, 11), rd(2))},
			final: map[int][]int{1: {10, 11}},
			want:  map[string]int{},
		},
		{
			// T0 and T1 append to keys 1 and 2 in opposite orders: each overwrote the other first.
			name:  "opposite write orders on two keys are G0",
			txns:  []jepsen.ListTxn{ok(app(1, 10), app(2, 20)), ok(app(1, 11), app(2, 21))},
			final: map[int][]int{1: {10, 11}, 2: {21, 20}},
			want:  map[string]int{jepsen.KindG0: 1},
		},
		{
			// T0 appends to 1 and T1 reads it; T1 appends to 2 and T0 reads that: each saw the other's write.
			name:  "each reading the other's write is G1c",
			txns:  []jepsen.ListTxn{ok(app(1, 10), rd(2, 20)), ok(rd(1, 10), app(2, 20))},
			final: map[int][]int{1: {10}, 2: {20}},
			want:  map[string]int{jepsen.KindG1c: 1},
		},
		{
			// Write skew: both read both keys empty, each appends to one.
			name:  "write skew is G2-item",
			txns:  []jepsen.ListTxn{ok(rd(1), rd(2), app(1, 10)), ok(rd(1), rd(2), app(2, 20))},
			final: map[int][]int{1: {10}, 2: {20}},
			want:  map[string]int{jepsen.KindG2Item: 1},
		},
		{
			name:  "a read that is not a prefix of the version order is flagged",
			txns:  []jepsen.ListTxn{ok(app(1, 10)), ok(app(1, 11)), ok(rd(1, 11))},
			final: map[int][]int{1: {10, 11}},
			want:  map[string]int{jepsen.KindIncompatibleOrder: 1},
		},
		{
			name: "reading a failed transaction's append is G1a",
			txns: []jepsen.ListTxn{{Ops: []jepsen.Op{app(1, 10)}, Outcome: jepsen.Failed}, ok(rd(1, 10))},
			// the final read does not show it (as if rolled back later): the read alone is the anomaly
			final: map[int][]int{},
			want:  map[string]int{jepsen.KindAbortedRead: 1, jepsen.KindIncompatibleOrder: 0},
		},
		{
			name:  "an acknowledged append missing at the end is lost",
			txns:  []jepsen.ListTxn{ok(app(1, 10)), ok(app(1, 11))},
			final: map[int][]int{1: {10}},
			want:  map[string]int{jepsen.KindLostAppend: 1},
		},
		{
			name:  "a value read twice is a duplicate",
			txns:  []jepsen.ListTxn{ok(app(1, 10)), ok(rd(1, 10, 10))},
			final: map[int][]int{1: {10, 10}},
			want:  map[string]int{jepsen.KindDuplicateElement: 2},
		},
		{
			name:  "a value nobody appended is garbage",
			txns:  []jepsen.ListTxn{ok(rd(1, 99))},
			final: map[int][]int{1: {99}},
			want:  map[string]int{jepsen.KindGarbageRead: 2},
		},
		{
			name: "an ambiguous append that was read counts as committed",
			txns: []jepsen.ListTxn{{Ops: []jepsen.Op{app(1, 10)}, Outcome: jepsen.Unknown},
				{Ops: []jepsen.Op{app(1, 11)}, Outcome: jepsen.Unknown}, ok(rd(1, 10))},
			final: map[int][]int{1: {10}},
			want:  map[string]int{},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := jepsen.CheckList(c.txns, c.final)
			for kind, n := range c.want {
				require.Equal(t, n, r.Found(kind), "%s in %v", kind, r)
			}
			total := 0
			for _, n := range c.want {
				total += n
			}
			found := 0
			for _, n := range r.Counts {
				found += n
			}
			require.Equal(t, total, found, "unexpected anomalies: %v", r)
		})
	}
}

func TestCheckListCountsAmbiguousOutcomes(t *testing.T) {
	r := jepsen.CheckList([]jepsen.ListTxn{
		{Ops: []jepsen.Op{app(1, 10)}, Outcome: jepsen.Unknown},
		{Ops: []jepsen.Op{app(1, 11)}, Outcome: jepsen.Unknown},
	}, map[int][]int{1: {10}})
	require.Equal(t, 2, r.Unknown)
	require.Equal(t, 1, r.UnknownCommitted)
	require.Equal(t, 1, r.Committed)
}

// TestCheckListFindsLongCycles builds a ring of n write-skew transactions: each reads the next key before it is
// appended to and appends to its own. The anti-dependency ring is one G2-item cycle through all of them.
func TestCheckListFindsLongCycles(t *testing.T) {
	const n = 2000
	var txns []jepsen.ListTxn
	final := map[int][]int{}
	for i := range n {
		txns = append(txns, ok(rd((i+1)%n), app(i, i)))
		final[i] = []int{i}
	}
	r := jepsen.CheckList(txns, final)
	require.Equal(t, 1, r.Found(jepsen.KindG2Item), "%v", r)
	require.Len(t, r.Anomalies[0].Txns, n)
}
