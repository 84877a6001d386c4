package replica

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// lsn is a position in PostgreSQL's write-ahead log: the 64-bit pg_lsn, compared as an unsigned integer.
type lsn uint64

// unknownLSN stands for "a commit happened whose position was lost". No real position is this large, so a session
// holding it can never be satisfied by a replica and reads from the primary until the position is settled there.
const unknownLSN = lsn(math.MaxUint64)

// parseLSN reads PostgreSQL's text form of a pg_lsn: two hexadecimal numbers of at most 8 digits each, the high and
// the low 32 bits, separated by a slash ("16/B374D848"). It accepts exactly what pg_lsn's input function accepts.
func parseLSN(s string) (lsn, error) {
	hi, lo, ok := strings.Cut(s, "/")
	if !ok {
		return 0, fmt.Errorf("%w: %q is not of the form X/Y", ErrInvalidToken, s)
	}
	h, err := parseHalf(hi)
	if err != nil {
		return 0, fmt.Errorf("%w: %q: %w", ErrInvalidToken, s, err)
	}
	l, err := parseHalf(lo)
	if err != nil {
		return 0, fmt.Errorf("%w: %q: %w", ErrInvalidToken, s, err)
	}
	return lsn(h<<32 | l), nil
}

// parseHalf parses 1 to 8 hex digits. strconv alone would also take signs and "0x" prefixes.
func parseHalf(s string) (uint64, error) {
	if len(s) == 0 || len(s) > 8 {
		return 0, fmt.Errorf("want 1 to 8 hexadecimal digits, got %d characters", len(s))
	}
	for _, c := range s {
		if !isHex(c) {
			return 0, fmt.Errorf("%q is not a hexadecimal digit", c)
		}
	}
	return strconv.ParseUint(s, 16, 32)
}

func isHex(c rune) bool {
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')
}

// String formats l as PostgreSQL does: upper-case hex halves without leading zeros.
func (l lsn) String() string {
	return fmt.Sprintf("%X/%X", uint64(l)>>32, uint64(l)&math.MaxUint32)
}
