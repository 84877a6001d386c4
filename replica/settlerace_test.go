package replica_test

import (
	"context"
	"strings"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/pgxact/pgxact/internal/faultproxy"
	"github.com/pgxact/pgxact/tx"
)

// A session that lost a commit's position settles on the primary: it asks for the primary's position and timeline.
// A commit recorded through the same session while that question is on its way (a concurrent write, here on a
// later timeline) must not be dropped when the answer arrives on another timeline.
func TestSettlingKeepsACommitRecordedMeanwhile(t *testing.T) {
	p := newPair(t)
	proxy, primary := proxied(t, p.primary.Config().ConnString())
	s, err := newRouter(t, primary, []*pgxpool.Pool{p.replica}).SessionFrom("FFFFFFFF/FFFFFFFF") // lost: settle
	require.NoError(t, err)
	var once sync.Once
	proxy.SetRule(func(m faultproxy.Message) faultproxy.Action {
		if strings.Contains(m.SQL, "pg_walfile_name") { // settling's question, after it took the session's state
			once.Do(func() { s.RecordTimelineCommit(context.Background(), 2, "7/0") })
		}
		return faultproxy.Forward
	})
	_, err = tx.Run(ctxT(t), s, lookFor(1), readOnly...)
	require.NoError(t, err)
	tl, _, _ := strings.Cut(s.Token(), ":")
	require.Equal(t, "2", tl, "token %s: the session forgot the commit it recorded on timeline 2", s.Token())
}
