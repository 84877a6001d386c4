package jepsen_test

import (
	"context"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgxact/pgxact/pgtest"
)

// syncSamplePeriod is how often syncSampler asks each node; syncSampleTimeout bounds each connect and query, so a
// frozen node costs a sample, not the run.
const (
	syncSamplePeriod  = 200 * time.Millisecond
	syncSampleTimeout = 500 * time.Millisecond
)

// syncSampler asks each node, every syncSamplePeriod, whether it is a writable primary and whether it replicates
// synchronously, as the node itself says. An acknowledged transfer lost with synchronous replication is then
// either one its primary acknowledged while it had no synchronous standby (pg_auto_failover's wait_primary, which
// trades durability for availability), or one that no such gap explains. It runs until stop; safe for concurrent
// use.
type syncSampler struct {
	mu      sync.Mutex
	samples map[string][]syncSample // by node name, in time order

	cancel context.CancelFunc
	done   sync.WaitGroup
}

type syncSample struct {
	at       time.Time
	writable bool // a primary, not in recovery
	sync     bool // synchronous_standby_names set and a synchronous standby streaming
}

func startSyncSampler(ctx context.Context, nodes []pgtest.HANode) *syncSampler {
	ctx, cancel := context.WithCancel(ctx)
	s := &syncSampler{samples: map[string][]syncSample{}, cancel: cancel}
	for _, n := range nodes {
		s.done.Add(1)
		go func() {
			defer s.done.Done()
			s.sampleNode(ctx, n)
		}()
	}
	return s
}

// stop ends the sampling and waits for its goroutines.
func (s *syncSampler) stop() {
	s.cancel()
	s.done.Wait()
}

func (s *syncSampler) sampleNode(ctx context.Context, n pgtest.HANode) {
	var conn *pgx.Conn
	defer func() {
		if conn != nil {
			_ = conn.Close(context.Background())
		}
	}()
	tick := time.NewTicker(syncSamplePeriod)
	defer tick.Stop()
	for {
		var ok bool
		conn, ok = s.sample(ctx, n, conn)
		if !ok && conn != nil {
			_ = conn.Close(context.Background())
			conn = nil
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// sample asks n once, on conn or a new connection, and records the answer. It returns the connection to ask on next
// time, and whether it answered.
func (s *syncSampler) sample(ctx context.Context, n pgtest.HANode, conn *pgx.Conn) (*pgx.Conn, bool) {
	ctx, cancel := context.WithTimeout(ctx, syncSampleTimeout)
	defer cancel()
	if conn == nil {
		var err error
		if conn, err = pgx.Connect(ctx, n.ConnString("postgres")); err != nil {
			return nil, false
		}
	}
	var sm syncSample
	err := conn.QueryRow(ctx, `SELECT NOT pg_is_in_recovery(),
		current_setting('synchronous_standby_names') <> ''
		AND EXISTS (SELECT FROM pg_stat_replication WHERE state = 'streaming' AND sync_state IN ('sync', 'quorum'))`).
		Scan(&sm.writable, &sm.sync)
	if err != nil {
		return conn, false
	}
	sm.at = time.Now()
	s.mu.Lock()
	s.samples[n.Name] = append(s.samples[n.Name], sm)
	s.mu.Unlock()
	return conn, true
}

// unsyncedAt reports whether node was sampled as a primary without a synchronous standby in the last sample at or
// before t or the first one after it: a commit it acknowledged at t may then have reached no standby.
func (s *syncSampler) unsyncedAt(node string, t time.Time) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	samples := s.samples[node]
	i := 0
	for i < len(samples) && !samples[i].at.After(t) {
		i++
	}
	unsynced := func(sm syncSample) bool { return sm.writable && !sm.sync }
	return (i > 0 && unsynced(samples[i-1])) || (i < len(samples) && unsynced(samples[i]))
}
