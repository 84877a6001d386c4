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

// mark is a point in a cluster's history that a session's reads must see: a log position on the primary's timeline.
// A position alone is not enough after a failover: the promoted standby starts a new timeline whose positions also
// exist, with other contents, on a standby left behind on the old one. Timeline 0 is "not known" (a token made before
// tokens carried one, or a recorder that was given none), which any replica's timeline satisfies.
type mark struct {
	at       lsn
	timeline uint32
}

// parseToken reads a Session token: "timeline:position" ("3:16/B374D848"), or a position alone, as tokens were
// before they carried the timeline.
func parseToken(s string) (mark, error) {
	tl, pos, ok := strings.Cut(s, ":")
	if !ok {
		at, err := parseLSN(s)
		return mark{at: at}, err
	}
	n, err := parseTimeline(tl)
	if err != nil {
		return mark{}, fmt.Errorf("%w: %q: %w", ErrInvalidToken, s, err)
	}
	at, err := parseLSN(pos)
	if err != nil {
		return mark{}, err
	}
	return mark{at: at, timeline: n}, nil
}

// parseTimeline parses a timeline id as a token carries it: 1 to 10 decimal digits, at least 1, at most 2³²−1.
func parseTimeline(s string) (uint32, error) {
	if len(s) == 0 || len(s) > 10 || strings.Trim(s, "0123456789") != "" {
		return 0, fmt.Errorf("timeline %q: want 1 to 10 decimal digits", s)
	}
	n, err := strconv.ParseUint(s, 10, 32)
	if err != nil || n == 0 {
		return 0, fmt.Errorf("timeline %q: want 1 to 4294967295", s)
	}
	return uint32(n), nil
}

// String formats m as a token: the timeline first when it is known.
func (m mark) String() string {
	if m.timeline == 0 {
		return m.at.String()
	}
	return strconv.FormatUint(uint64(m.timeline), 10) + ":" + m.at.String()
}

// merge is the mark a session keeps after m once it learns of a commit at n, on n's timeline. A later timeline
// replaces the position: the promotion that started it kept every earlier commit that survived, below where the new
// timeline began, and a higher position of the old timeline (a tail the failover lost) means nothing on the new one.
// Otherwise the higher position stands; a mark without timeline (a token from before tokens carried one) is only
// known to be on some timeline, and keeps it.
func (m mark) merge(n mark) mark {
	if m.timeline != 0 && n.timeline > m.timeline {
		return n
	}
	return mark{at: max(m.at, n.at), timeline: max(m.timeline, n.timeline)}
}

// coveredBy reports whether a server that has replayed up to at on timeline tl has replayed m. The timelines must
// be equal: a higher one may be a sibling branch that never had m's commit, and a standby reports the timeline of
// its last restartpoint, which lags behind a switch of timelines, never ahead of it (see replayPosition).
func (m mark) coveredBy(at lsn, tl uint32) bool {
	return at >= m.at.recordEnd() && (m.timeline == 0 || m.timeline == tl)
}

// WAL page layout (PostgreSQL's defaults, which the distributions' packages keep): every page starts with a header,
// a long one on the first page of a segment.
const (
	walPageSize        = 8192 // XLOG_BLCKSZ
	walShortHeaderSize = 24   // SizeOfXLogShortPHD, MAXALIGNed
	walLongHeaderSize  = 40   // SizeOfXLogLongPHD, MAXALIGNed
)

// recordEnd is the end of the last record written before l, an insert position (pg_current_wal_insert_lsn, where
// tokens come from), as a standby's replay position reports it. They differ only when the last record ended exactly at
// a page's start: the insert position is then past the next page's header, which no replay position ever reaches
// until more WAL is written. Nothing else ends there: a record placed after a header is at least 24 bytes long, and
// a record's continuation after a page header means no record ended at the page's start.
func (l lsn) recordEnd() lsn {
	if off := l % walPageSize; off == walShortHeaderSize || off == walLongHeaderSize {
		return l - off
	}
	return l
}

// String formats l as PostgreSQL does: upper-case hex halves without leading zeros.
func (l lsn) String() string {
	return fmt.Sprintf("%X/%X", uint64(l)>>32, uint64(l)&math.MaxUint32)
}
