package faultproxy_test

import (
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/pgxact/pgxact/internal/faultproxy"
)

var (
	query  = faultproxy.Message{Type: 'Q', SQL: "select 1"}
	commit = faultproxy.Message{Type: 'Q', SQL: "commit"}
)

// answers asks r about m n times.
func answers(r faultproxy.Rule, m faultproxy.Message, n int) []faultproxy.Action {
	out := make([]faultproxy.Action, n)
	for i := range out {
		out[i] = r(m)
	}
	return out
}

func tally(actions []faultproxy.Action) map[faultproxy.Action]int {
	counts := map[faultproxy.Action]int{}
	for _, a := range actions {
		counts[a]++
	}
	return counts
}

func TestRandomCutsIsDeterministicForASeed(t *testing.T) {
	a := answers(faultproxy.RandomCuts(0.3, 42), query, 1000)
	require.Equal(t, a, answers(faultproxy.RandomCuts(0.3, 42), query, 1000))
	require.NotEqual(t, a, answers(faultproxy.RandomCuts(0.3, 43), query, 1000))
}

func TestRandomCutsRate(t *testing.T) {
	tests := []struct {
		name     string
		prob     float64
		min, max int // forwards out of 10000, fixed by the seed
	}{
		{name: "never cuts at 0", prob: 0, min: 10000, max: 10000},
		{name: "never cuts below 0", prob: -1, min: 10000, max: 10000},
		{name: "always cuts at 1", prob: 1, min: 0, max: 0},
		{name: "cuts about 30% at 0.3", prob: 0.3, min: 6700, max: 7300},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			counts := tally(answers(faultproxy.RandomCuts(tt.prob, 1), query, 10000))
			require.GreaterOrEqual(t, counts[faultproxy.Forward], tt.min)
			require.LessOrEqual(t, counts[faultproxy.Forward], tt.max)
			if cuts := 10000 - counts[faultproxy.Forward]; cuts > 0 {
				require.InDelta(t, cuts/2, counts[faultproxy.CutBefore], float64(cuts)/10, "before and after 50/50")
			}
		})
	}
}

func TestCutCommitsOnlyCutsCommits(t *testing.T) {
	r := faultproxy.CutCommits(1, 5)
	require.Equal(t, faultproxy.Forward, r(query))
	require.NotEqual(t, faultproxy.Forward, r(commit))
}

func TestCutCommitsDrawsOnlyForCommits(t *testing.T) {
	mixed := faultproxy.CutCommits(0.5, 9)
	var got []faultproxy.Action
	for range 100 {
		require.Equal(t, faultproxy.Forward, mixed(query))
		got = append(got, mixed(commit))
	}
	require.Equal(t, answers(faultproxy.RandomCuts(0.5, 9), commit, 100), got)
}

func TestRandomCutsIsSafeForConcurrentUse(t *testing.T) {
	r := faultproxy.RandomCuts(0.5, 3)
	results := make([][]faultproxy.Action, 8)
	var wg sync.WaitGroup
	for i := range results {
		wg.Go(func() { results[i] = answers(r, query, 500) })
	}
	wg.Wait()

	// The interleaving is up to the scheduler, but the multiset of answers is not.
	var all []faultproxy.Action
	for _, rs := range results {
		all = append(all, rs...)
	}
	require.Equal(t, tally(answers(faultproxy.RandomCuts(0.5, 3), query, 4000)), tally(all))
}
