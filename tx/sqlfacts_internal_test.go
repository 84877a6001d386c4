package tx

import (
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestFactsOfRemembersWhatLexingSays: a text's facts are the same whether lexed or remembered, on the first call and
// on later ones, and each fact is what the lexing functions say.
func TestFactsOfRemembersWhatLexingSays(t *testing.T) {
	cases := []struct {
		sql  string
		want sqlFacts
	}{
		{"SELECT next FROM links WHERE id = $1", sqlFacts{reads: true}},
		{"UPDATE links SET hits = hits + 1 WHERE id = $1", sqlFacts{}},
		{"  -- nothing\n ;", sqlFacts{none: true, unseen: unseenSchema}},
		{"SELECT 1; SELECT 2", sqlFacts{several: true, reads: true, unseen: unseenSchema}},
		{"SELECT pg_notify('c', $1)", sqlFacts{reads: true, unseen: unseenNotify, write: unseenNotify}},
		{"SET TRANSACTION READ WRITE", sqlFacts{unseen: unseenWritable, write: unseenWritable}},
		{"SELECT set_config('search_path', $1, true)", sqlFacts{reads: true, unseen: unseenSchema, write: unseenSchema}},
		{"COMMIT; SELECT pg_notify('c', $1)", sqlFacts{several: true, unseen: unseenSchema | unseenEnds | unseenNotify,
			write: unseenNotify}},
		{"CREATE TABLE t (id int)", sqlFacts{unseen: unseenSchema}},
		{"COMMIT", sqlFacts{unseen: unseenEnds}},
		{"SELECT * INTO copy FROM t", sqlFacts{unseen: unseenSchema}},
	}
	for _, c := range cases {
		t.Run(c.sql, func(t *testing.T) {
			require.Equal(t, c.want, readFacts(c.sql))
			require.Equal(t, c.want, factsOf(c.sql), "first look-up")
			require.Equal(t, c.want, factsOf(c.sql), "remembered")
			// What Func's handle reads from the facts instead of lexing (handle.go).
			require.Equal(t, unseenWrite(c.sql), factsOf(c.sql).write, "unseenWrite")
			require.Equal(t, mayEnd(c.sql), factsOf(c.sql).mayEnd(), "mayEnd")
		})
	}
}

// TestFactsOfStopsRemembering: past maxKnownTexts distinct texts, or maxKnownBytes of them, the table stops growing and
// later texts are still lexed right.
func TestFactsOfStopsRemembering(t *testing.T) {
	long := "SELECT '" + strings.Repeat("x", maxKnownBytes/2) + "'"
	require.Equal(t, sqlFacts{reads: true}, factsOf(long))
	require.Equal(t, sqlFacts{reads: true}, factsOf(long+" AS a"))
	_, remembered := knownTexts.facts.Load(long + " AS a")
	require.False(t, remembered, "a text past the bytes bound was kept")
	require.LessOrEqual(t, keptBytes(), maxKnownBytes)

	for i := range maxKnownTexts + 100 {
		factsOf("SELECT " + strconv.Itoa(i))
	}
	n := knownTexts.n.Load()
	require.LessOrEqual(t, n, int32(maxKnownTexts+1), "the table grew past its bound")
	require.GreaterOrEqual(t, n, int32(maxKnownTexts), "the table should have filled")
	require.LessOrEqual(t, keptBytes(), maxKnownBytes)
	late := "DELETE FROM t WHERE id = $1 -- after the table filled"
	require.Equal(t, sqlFacts{}, factsOf(late))
	_, remembered = knownTexts.facts.Load(late)
	require.False(t, remembered)
	require.Equal(t, sqlFacts{reads: true}, factsOf("SELECT $1 -- also after"))
}

// keptBytes is the bytes of text the table holds.
func keptBytes() int {
	n := 0
	knownTexts.facts.Range(func(k, _ any) bool {
		n += len(k.(string))
		return true
	})
	return n
}
