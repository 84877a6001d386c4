package replica

import (
	"context"
	"math"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/pgxact/pgxact/pgtest"
)

func TestParseLSN(t *testing.T) {
	cases := []struct {
		in   string
		want lsn
	}{
		{"0/0", 0},
		{"0/1", 1},
		{"1/0", 1 << 32},
		{"16/B374D848", 0x16_B374D848},
		{"16/b374d848", 0x16_B374D848},
		{"0/FFFFFFFF", math.MaxUint32},
		{"FFFFFFFF/FFFFFFFF", math.MaxUint64},
		{"00000000/00000001", 1},
	}
	for _, c := range cases {
		t.Run(c.in, func(t *testing.T) {
			got, err := parseLSN(c.in)
			require.NoError(t, err)
			require.Equal(t, c.want, got)
		})
	}
}

func TestParseLSNRejectsWhatPostgreSQLRejects(t *testing.T) {
	for _, in := range []string{
		"", "/", "0/", "/0", "0", "0/0/0", "0 /0", " 0/0", "0/0 ", "+1/0", "-1/0", "0x1/0", "1/0x0",
		"100000000/0", "0/100000000", "G/0", "0/g", "1_0/0", "١/0",
	} {
		t.Run(in, func(t *testing.T) {
			_, err := parseLSN(in)
			require.ErrorIs(t, err, ErrInvalidToken)
		})
	}
}

func TestLSNOrderIsNumeric(t *testing.T) {
	// Text comparison would get these wrong: "9/0" > "10/0" and "0/FF" > "0/1000" as strings.
	ordered := []string{"0/0", "0/FF", "0/1000", "0/FFFFFFFF", "1/0", "9/0", "A/0", "10/0", "10/1", "FFFFFFFF/FFFFFFFF"}
	for i := 1; i < len(ordered); i++ {
		a, err := parseLSN(ordered[i-1])
		require.NoError(t, err)
		b, err := parseLSN(ordered[i])
		require.NoError(t, err)
		require.Less(t, a, b, "%s < %s", ordered[i-1], ordered[i])
	}
}

func TestLSNStringRoundTrips(t *testing.T) {
	for _, in := range []string{"0/0", "0/1", "16/B374D848", "FFFFFFFF/FFFFFFFF", "1/0"} {
		t.Run(in, func(t *testing.T) {
			l, err := parseLSN(in)
			require.NoError(t, err)
			require.Equal(t, in, l.String())
		})
	}
}

// TestParseLSNAgreesWithPostgreSQL feeds the same text to pg_lsn's input function and to parseLSN.
func TestParseLSNAgreesWithPostgreSQL(t *testing.T) {
	pool := pgtest.Pool(t)
	inputs := []string{
		"0/0", "16/B374D848", "16/b374d848", "FFFFFFFF/FFFFFFFF", "00000000/00000001", "0/FFFFFFFF",
		"", "/", "0/", "/0", "0", "0/0/0", " 0/0", "0/0 ", "+1/0", "-1/0", "0x1/0", "100000000/0", "0/100000000",
		"G/0", "1_0/0", "١/0",
	}
	for _, in := range inputs {
		t.Run(in, func(t *testing.T) {
			var text string
			pgErr := pool.QueryRow(context.Background(), "SELECT $1::text::pg_lsn::text", in).Scan(&text)
			got, err := parseLSN(in)
			if pgErr != nil {
				require.Error(t, err, "PostgreSQL rejects %q: %v", in, pgErr)
				return
			}
			require.NoError(t, err, "PostgreSQL accepts %q", in)
			require.Equal(t, text, got.String())
		})
	}
}

// A token taken when the last record ended exactly at a page's start lies past the next page's header; a standby's
// replay position is the page's start, and must cover it. Nothing else moves.
func TestATokenPastAPageHeaderIsCoveredByThePageStart(t *testing.T) {
	const page = lsn(0x303C000) // a page start inside a segment
	const segment = lsn(0x3000000)
	for _, c := range []struct {
		name     string
		token    lsn
		replayed lsn
		want     bool
	}{
		{"past a page's header", page + 24, page, true},
		{"past a segment's long header", segment + 40, segment, true},
		{"a record end just after a header", page + 48, page, false},
		{"replayed short of the page", page + 24, page - 8, false},
		{"an ordinary position", page + 4096, page + 4096, true},
		{"an ordinary position not reached", page + 4096, page + 4088, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			m := mark{at: c.token, timeline: 1}
			require.Equal(t, c.want, m.coveredBy(c.replayed, 1))
			var mem member
			mem.replayed.Store(uint64(c.replayed))
			require.Equal(t, c.want, mem.hasReplayed(c.token))
		})
	}
}
