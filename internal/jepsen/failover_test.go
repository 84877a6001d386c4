package jepsen_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/pgxact/pgxact/internal/faultproxy"
	"github.com/pgxact/pgxact/internal/jepsen"
	"github.com/pgxact/pgxact/pgtest"
	"github.com/pgxact/pgxact/retry"
	"github.com/pgxact/pgxact/tx"
)

// failoverKind is one way of losing the primary.
type failoverKind string

const (
	switchover failoverKind = "switchover" // planned: HA.Switchover
	crash      failoverKind = "crash"      // SIGKILL of the primary: HA.CrashPrimary
	partition  failoverKind = "partition"  // the primary frozen, alive but unreachable: HA.FreezePrimary
)

// failoverPlan is the sequence of failovers of each run.
var failoverPlan = []failoverKind{switchover, crash, partition, switchover, crash}

const (
	failoverClients  = 16
	failoverConns    = 8
	failoverMaxOps   = 200_000
	failoverOpLimit  = 4 * time.Second // each Run's deadline: a frozen node must cost a client seconds, not minutes
	failoverCanaries = 4
)

// TestBankAcrossFailovers runs the bank through failovers of a pg_auto_failover cluster, with synchronous and with
// asynchronous replication, side by side (most of each run is waiting on pg_auto_failover's timers). Clients reach
// the nodes through a fault proxy each and a multi-host connection string, as an application would.
func TestBankAcrossFailovers(t *testing.T) {
	before := jepsen.SnapshotGoroutines()
	t.Cleanup(func() { requireNoLeaks(t, before) }) // after both subtests, whose goroutines would count as leaks
	for _, synchronous := range []bool{true, false} {
		name := map[bool]string{true: "synchronous", false: "asynchronous"}[synchronous]
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			testBankAcrossFailovers(t, synchronous)
		})
	}
}

func testBankAcrossFailovers(t *testing.T, synchronous bool) {
	// The bound is twice what a run takes on an idle 2-core machine: pg_auto_failover's waits stretch when the
	// machine is busy with other tests.
	ctx := testCtx(t, 8*time.Minute)
	ha, err := pgtest.StartHA(ctx, pgtest.HAOptions{Synchronous: synchronous})
	require.NoError(t, err, "the HA cluster must start; scripts/ensure-postgres.sh installs pg_auto_failover")
	t.Cleanup(func() { require.NoError(t, ha.Stop()) })
	connString, err := ha.CreateDatabase(ctx, "")
	require.NoError(t, err)
	cfg, err := pgx.ParseConfig(connString)
	require.NoError(t, err)
	bank := jepsen.Bank{Accounts: 16, Initial: 1000}
	setup, err := pgx.Connect(ctx, connString)
	require.NoError(t, err)
	require.NoError(t, bank.Setup(ctx, setup))
	require.NoError(t, setup.Close(ctx))

	f := newFailoverRun(t, ha, cfg.Database, bank)
	if synchronous {
		f.sync = startSyncSampler(ctx, ha.Nodes())
		defer f.sync.stop() // on failure too; report stops it first
	}
	loadCtx, stopLoad := context.WithCancel(ctx)
	var ran int
	loadDone := make(chan struct{})
	go func() {
		defer close(loadDone)
		ran = jepsen.RunWorkers(loadCtx, failoverClients, failoverMaxOps, f.op)
	}()
	defer func() { stopLoad(); <-loadDone }() // on failure too: the clients stop before the pool closes

	started := time.Now()
	for _, kind := range failoverPlan {
		f.failover(ctx, kind)
	}
	stopLoad()
	<-loadDone
	elapsed := time.Since(started)
	f.report(ctx, ran, elapsed, synchronous)
}

// failoverRun is one run's clients, proxies and records.
type failoverRun struct {
	t      *testing.T
	ha     *pgtest.HA
	dbname string
	bank   jepsen.Bank
	pool   *pgxpool.Pool
	policy tx.Option
	resets *resetter
	nodeOf map[string]string
	proxy  map[string]*faultproxy.Proxy // by node name
	rec    *bankRecorder
	sync   *syncSampler // synchronous runs only

	mu          sync.Mutex
	commits     []commitAt                   // acknowledged transfers, in completion order
	resolutions map[int64][]commitResolution // by transfer id
	unknownWhy  map[string]int               // why Run returned ErrCommitUnknown
	failovers   []failoverRecord
	canaryDead  int
	canaryTotal int
}

type commitAt struct {
	id   int64
	at   time.Time
	node string
}

// failoverRecord is one failover: when the fault struck, which node it promoted, and what pgtest measured.
type failoverRecord struct {
	kind        failoverKind
	at          time.Time
	promoted    string
	downtime    time.Duration // until the new primary first accepted a write, as pgtest polled it (crash, partition)
	took        time.Duration // until the cluster was stable again
	firstCommit time.Duration // until a client's first commit on the new primary
	outage      time.Duration // from the last commit on the old primary to the first on the new one
	xids        []int64       // the canaries'
}

func newFailoverRun(t *testing.T, ha *pgtest.HA, dbname string, bank jepsen.Bank) *failoverRun {
	f := &failoverRun{t: t, ha: ha, dbname: dbname, bank: bank, nodeOf: map[string]string{},
		proxy: map[string]*faultproxy.Proxy{}, rec: newBankRecorder(), resolutions: map[int64][]commitResolution{}, unknownWhy: map[string]int{}}
	var addrs []string
	for _, n := range ha.Nodes() {
		p, err := faultproxy.Start(n.Addr)
		require.NoError(t, err)
		t.Cleanup(func() { _ = p.Close() })
		f.proxy[n.Name], f.nodeOf[p.Addr()] = p, n.Name
		addrs = append(addrs, p.Addr())
	}
	cfg, err := pgxpool.ParseConfig(ha.ConnStringVia(dbname, addrs...))
	require.NoError(t, err)
	cfg.MaxConns = failoverConns
	cfg.ConnConfig.RuntimeParams["application_name"] = loadApp
	f.pool = newPool(t, cfg)
	f.resets = &resetter{pool: f.pool}
	f.policy = tx.WithPolicy(retry.New(
		retry.On(retry.Serialization, retry.Deadlock, retry.ConnectionLost, retry.ReadOnlyTransaction),
		retry.MaxAttempts(50),
		retry.MaxElapsed(failoverOpLimit),
		// Gentler than the suite's: during a failover every attempt fails at once, and 16 clients retrying every
		// few milliseconds would take the CPU the cluster needs to fail over.
		retry.WithBackoff(retry.FullJitter(retry.Exponential(5*time.Millisecond, 200*time.Millisecond), nil)),
	))
	return f
}

func (f *failoverRun) watch() *runWatch {
	return &runWatch{pool: f.pool, nodeOf: f.nodeOf, resets: f.resets}
}

// op is one client operation: a read now and then, otherwise a transfer, then a short pause that leaves the CPU to
// the cluster.
func (f *failoverRun) op(ctx context.Context, seq int) {
	rng := rand.New(rand.NewPCG(12, uint64(seq)))
	opCtx, cancel := context.WithTimeout(ctx, failoverOpLimit)
	defer cancel()
	w := f.watch()
	if rng.IntN(5) == 0 {
		balances, err := tx.Run(opCtx, w, f.bank.ReadTx(), f.policy, tx.WithObserver(w))
		f.rec.read(balances, err)
	} else {
		tr := randomTransfer(rng, f.bank, int64(seq))
		_, err := tx.Run(opCtx, w, f.bank.TransferTx(tr), f.policy, tx.WithObserver(w))
		f.rec.transfer(tr, err, &w.attemptLog)
		f.note(tr.ID, err, w)
	}
	select {
	case <-ctx.Done():
	case <-time.After(time.Duration(1+rng.IntN(4)) * time.Millisecond):
	}
}

func (f *failoverRun) note(id int64, err error, w *runWatch) {
	now := time.Now()
	f.mu.Lock()
	defer f.mu.Unlock()
	if err == nil {
		f.commits = append(f.commits, commitAt{id: id, at: now, node: w.node})
	}
	if r := w.resolutions(err); len(r) > 0 {
		f.resolutions[id] = r
	}
	if errors.Is(err, tx.ErrCommitUnknown) {
		f.unknownWhy[unknownReason(err)]++
	}
}

// unknownReason is what an ErrCommitUnknown says it could not establish, without the ids and addresses in it.
func unknownReason(err error) string {
	msg := err.Error()
	if i := strings.Index(msg, tx.ErrCommitUnknown.Error()+": "); i >= 0 {
		msg = msg[i+len(tx.ErrCommitUnknown.Error())+2:]
	}
	msg, _, _ = strings.Cut(msg, " (commit failed with")
	if rest, ok := strings.CutPrefix(msg, "pg_xact_status: "); ok {
		ended := strings.Contains(rest, context.DeadlineExceeded.Error()) || strings.Contains(rest, context.Canceled.Error())
		rest, _, _ = strings.Cut(rest, ":")
		rest, _, _ = strings.Cut(rest, " `")
		if ended {
			rest += " (a context ended)"
		}
		return "pg_xact_status: " + rest
	}
	msg, _, _ = strings.Cut(msg, ":")
	return strings.Map(func(r rune) rune {
		if r >= '0' && r <= '9' {
			return 'N'
		}
		return r
	}, msg)
}

// failover loses the primary one way, waits until the cluster is stable again and a client has committed on the
// new primary, and checks the canaries that were opened on it.
func (f *failoverRun) failover(ctx context.Context, kind failoverKind) {
	t := f.t
	primary, err := f.ha.Primary(ctx)
	require.NoError(t, err)
	next := f.other(primary)
	c := startCanaries(ctx, next, f.dbname, failoverCanaries)
	defer c.close()

	rec := failoverRecord{kind: kind, at: time.Now(), promoted: next.Name}
	switch kind {
	case switchover:
		err = f.switchover(ctx, primary)
	case crash:
		rec.downtime, err = f.ha.CrashPrimary(ctx)
	case partition:
		rec.downtime, err = f.partition(ctx)
	}
	require.NoError(t, err, "%s", kind)
	rec.took = time.Since(rec.at)
	now, err := f.ha.Primary(ctx)
	require.NoError(t, err)
	require.Equal(t, next.Name, now.Name, "%s promoted the other node", kind)

	rec.firstCommit, rec.outage, err = f.firstCommit(ctx, next.Name, rec.at)
	require.NoError(t, err, "after the %s, no client committed on the new primary %s", kind, next.Name)
	// Let the load run on the stable cluster a moment, then check that the canaries lived through it all.
	time.Sleep(time.Second)
	dead, checked, xids, err := c.check(ctx)
	require.NoError(t, err, "canaries on %s", next.Name)
	rec.xids = xids
	f.mu.Lock()
	f.failovers = append(f.failovers, rec)
	f.canaryDead += dead
	f.canaryTotal += checked
	f.mu.Unlock()
	t.Logf("%s: %s to %s; stable after %v, first commit after %v, canary xids %v, %d dead",
		time.Now().Format("15:04:05.000"), kind, next.Name, rec.took.Round(time.Millisecond),
		rec.firstCommit.Round(time.Millisecond), xids, dead)
}

// switchover fences the primary at its proxy, as an application drains a primary before a planned switchover, then
// has pg_auto_failover switch over. Unfenced, pg_auto_failover 2.0 loses commits: perform_failover assigns the primary
// draining and, a few milliseconds later, wait_primary ("none of the standby nodes in the quorum are healthy", the
// standby having left secondary for prepare_promotion), which turns synchronous replication off while the standby
// stops replicating to be promoted. The old primary then acknowledges commits alone until its demote timeout, and
// they are gone once it rejoins: 2,355 acknowledged transfers in a CI run, 3,521 in a local one, all acknowledged
// while the sampled primary had no synchronous standby.
func (f *failoverRun) switchover(ctx context.Context, primary pgtest.HANode) error {
	p := f.proxy[primary.Name]
	p.SetRule(func(faultproxy.Message) faultproxy.Action { return faultproxy.CutBefore })
	defer p.SetRule(nil)
	return f.ha.Switchover(ctx)
}

// partition freezes the primary, so that clients through its proxy hang as in a network partition, and once the
// other node is primary fences the proxy (every message cut before it reaches the node) before resuming it: until
// pg_auto_failover demotes it, the resumed old primary still takes writes, and a client must not reach it. A real
// deployment fences with the network or STONITH; this is the proxy's stand-in.
func (f *failoverRun) partition(ctx context.Context) (time.Duration, error) {
	frozen, downtime, err := f.ha.FreezePrimary(ctx)
	if err != nil {
		return downtime, err
	}
	defer frozen.Resume()
	p := f.proxy[frozen.Name]
	p.SetRule(func(faultproxy.Message) faultproxy.Action { return faultproxy.CutBefore })
	defer p.SetRule(nil)
	return downtime, frozen.Rejoin(ctx)
}

func (f *failoverRun) other(n pgtest.HANode) pgtest.HANode {
	nodes := f.ha.Nodes()
	if nodes[0].Name == n.Name {
		return nodes[1]
	}
	return nodes[0]
}

// firstCommit waits up to 20s for an acknowledged transfer on node completed after since, and returns how long after
// since the first one completed, and how long after the last commit on another node before it: the write outage the
// clients saw, whatever pgtest's own waits before the fault cost.
func (f *failoverRun) firstCommit(ctx context.Context, node string, since time.Time) (sinceFault, outage time.Duration, err error) {
	deadline := time.Now().Add(20 * time.Second)
	for {
		f.mu.Lock()
		i := slices.IndexFunc(f.commits, func(c commitAt) bool { return c.node == node && c.at.After(since) })
		var first, lastOld time.Time
		if i >= 0 {
			first = f.commits[i].at
			for _, c := range slices.Backward(f.commits[:i]) {
				if c.node != node {
					lastOld = c.at
					break
				}
			}
		}
		f.mu.Unlock()
		if i >= 0 {
			if lastOld.IsZero() {
				lastOld = since
			}
			return first.Sub(since), first.Sub(lastOld), nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return 0, 0, fmt.Errorf("none within 20s of the cluster being stable")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// report checks the run's history and logs its figures, one line each.
func (f *failoverRun) report(ctx context.Context, ran int, elapsed time.Duration, synchronous bool) {
	t := f.t
	admin, err := pgx.Connect(ctx, f.ha.ConnString(f.dbname))
	require.NoError(t, err)
	t.Cleanup(func() { _ = admin.Close(context.Background()) })
	final, err := f.bank.ReadState(ctx, admin)
	require.NoError(t, err)
	report := jepsen.CheckBank(f.rec.history(f.bank, final))
	if f.sync != nil {
		f.sync.stop()
	}

	inLedger := map[int64]bool{}
	for _, e := range final.Ledger {
		inLedger[e.ID] = true
	}
	var lost, lostResolved []int64
	var committed, aborted, unknown int
	f.rec.mu.Lock()
	transfers := slices.Clone(f.rec.transfers)
	f.rec.mu.Unlock()
	for _, tr := range transfers {
		rs := f.resolutions[tr.ID]
		committed += count(rs, resolvedCommitted)
		aborted += count(rs, resolvedAborted)
		unknown += count(rs, resolvedUnknown)
		if tr.Outcome == jepsen.OK && !inLedger[tr.ID] {
			lost = append(lost, tr.ID)
			if slices.Contains(rs, resolvedCommitted) {
				lostResolved = append(lostResolved, tr.ID)
			}
		}
	}
	// Mis-resolved: Run said committed after resolving a lost COMMIT and the transfer is gone, or Run failed
	// definitely and it is there, or a COMMIT resolved as aborted was retried and applied twice.
	misResolved := len(lostResolved) + report.Phantom + report.Duplicated

	mode := map[bool]string{true: "synchronous", false: "asynchronous"}[synchronous]
	var kinds []string
	var toCommit, outages []time.Duration
	for _, r := range f.failovers {
		accepted := "" // pgtest measures it for unplanned failovers only
		if r.kind != switchover {
			accepted = fmt.Sprintf(", write accepted %v", r.downtime.Round(time.Millisecond))
		}
		kinds = append(kinds, fmt.Sprintf("%s->%s (first commit %v, outage %v%s, stable %v)", r.kind, r.promoted,
			r.firstCommit.Round(time.Millisecond), r.outage.Round(time.Millisecond), accepted, r.took.Round(time.Millisecond)))
		toCommit = append(toCommit, r.firstCommit)
		outages = append(outages, r.outage)
	}
	slices.Sort(toCommit)
	slices.Sort(outages)
	logf := func(format string, args ...any) { t.Logf("%s: "+format, append([]any{mode}, args...)...) }
	logf("%d failovers in %v: %s", len(f.failovers), elapsed.Round(time.Millisecond), strings.Join(kinds, ", "))
	logf("%d operations by %d clients on %d connections; pool resets %d", ran, failoverClients, failoverConns, f.resets.count.Load())
	logf("bank: %v", report)
	logf("acknowledged transfers lost: %d %v", len(lost), lost[:min(len(lost), 20)])
	logf("lost transfers that Run had resolved as committed after an ambiguous COMMIT: %d", len(lostResolved))
	logf("ambiguous commits: %d resolved committed, %d resolved aborted (retried), %d unknown (ErrCommitUnknown: %d in the ledger, %d absent), %d mis-resolved",
		committed, aborted, report.Ambiguous, report.AmbiguousCommitted, report.AmbiguousAbsent, misResolved)
	logf("attempts that tried to settle a lost COMMIT and could not: %d; ErrCommitUnknown by reason: %v", unknown, f.unknownWhy)
	logf("innocent backends terminated: %d of %d canaries", f.canaryDead, f.canaryTotal)
	logf("failure to first commit on the new primary: max %v, median %v", toCommit[len(toCommit)-1].Round(time.Millisecond),
		toCommit[len(toCommit)/2].Round(time.Millisecond))
	logf("write outage, last commit on the old primary to first on the new: max %v, median %v",
		outages[len(outages)-1].Round(time.Millisecond), outages[len(outages)/2].Round(time.Millisecond))
	logf("outcomes:%v", f.rec.errs)

	require.Len(t, f.failovers, len(failoverPlan))
	require.Zero(t, misResolved, "mis-resolved commits: %v%s", report, f.rec.explain(append(lostResolved, report.Suspects...)))
	require.Zero(t, f.canaryDead, "innocent backends terminated")
	anomalies := report.Anomalies()
	if !synchronous {
		anomalies -= report.Lost // asynchronous replication loses what the standby had not received: counted, not failed
	}
	if synchronous && report.Lost > 0 {
		if events, err := f.ha.Events(ctx); err == nil {
			t.Logf("monitor events:\n%s", strings.Join(events, "\n"))
		}
	}
	if synchronous {
		require.Zero(t, report.Lost, "acknowledged transfers lost with synchronous replication:%s%s", f.whereLost(lost), f.rec.explain(lost))
	}
	require.Zero(t, anomalies, "%v%s", report, f.rec.explain(report.Suspects))
	require.Positive(t, report.Acknowledged)

	d := db{connString: f.ha.ConnString(f.dbname), name: f.dbname, admin: admin}
	d.requireQuiescent(t, f.pool)
	f.pool.Close()
	for _, p := range f.proxy {
		require.NoError(t, p.Close())
	}
}

// whereLost says which node acknowledged the lost transfers and when, against the failovers' start times: what
// tells a cluster that dropped a history from a runner that acknowledged what never committed.
func (f *failoverRun) whereLost(lost []int64) string {
	if len(lost) == 0 {
		return ""
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	isLost := map[int64]bool{}
	for _, id := range lost {
		isLost[id] = true
	}
	var b strings.Builder
	b.WriteString("\n  failovers:")
	for _, r := range f.failovers {
		fmt.Fprintf(&b, " %s->%s at %s;", r.kind, r.promoted, r.at.Format("15:04:05.000"))
	}
	type span struct {
		first, last time.Time
		n, unsynced int
	}
	byNode := map[string]*span{}
	var nodes []string
	for _, c := range f.commits {
		if !isLost[c.id] {
			continue
		}
		s := byNode[c.node]
		if s == nil {
			s = &span{first: c.at}
			byNode[c.node] = s
			nodes = append(nodes, c.node)
		}
		s.last, s.n = c.at, s.n+1
		if f.sync != nil && f.sync.unsyncedAt(c.node, c.at) {
			s.unsynced++
		}
	}
	for _, n := range nodes {
		s := byNode[n]
		fmt.Fprintf(&b, "\n  acknowledged on %q: %d lost, from %s to %s; %d of them while %s, as sampled, had no synchronous standby",
			n, s.n, s.first.Format("15:04:05.000"), s.last.Format("15:04:05.000"), s.unsynced, n)
	}
	return b.String()
}

func count[T comparable](s []T, v T) int {
	n := 0
	for _, x := range s {
		if x == v {
			n++
		}
	}
	return n
}
