package pgtest_test

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/pgxact/pgxact/internal/faultproxy"
	"github.com/pgxact/pgxact/pgtest"
)

// A failover test: a pool on the multi-host connection string follows the primary through a switchover and
// a crash. Each change takes seconds, so this example is compiled but not run.
func ExampleStartHA() {
	ctx := context.Background()
	ha, err := pgtest.StartHA(ctx, pgtest.HAOptions{Synchronous: true})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer ha.Stop()
	connString, err := ha.CreateDatabase(ctx, "bank")
	if err != nil {
		fmt.Println(err)
		return
	}
	pool, err := pgxpool.New(ctx, connString)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer pool.Close()

	if err := ha.Switchover(ctx); err != nil { // node2 is primary now
		fmt.Println(err)
		return
	}
	downtime, err := ha.CrashPrimary(ctx) // node1 again, on a new timeline
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("no primary for", downtime)
	// A connection the pool had to the old primary fails once; new ones go to the new primary.
	_, _ = pool.Exec(ctx, "SELECT 1")
	_, err = pool.Exec(ctx, "SELECT 1")
	fmt.Println(err)
}

// A partition between the clients and a primary that keeps running: the clients reach the nodes through
// proxies, and the primary's proxy stops forwarding.
func ExampleHA_ConnStringVia() {
	ctx := context.Background()
	ha, err := pgtest.StartHA(ctx, pgtest.HAOptions{})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer ha.Stop()
	var addrs []string
	proxies := map[string]*faultproxy.Proxy{}
	for _, node := range ha.Nodes() {
		p, err := faultproxy.Start(node.Addr)
		if err != nil {
			fmt.Println(err)
			return
		}
		defer p.Close()
		proxies[node.Name] = p
		addrs = append(addrs, p.Addr())
	}
	pool, err := pgxpool.New(ctx, ha.ConnStringVia("postgres", addrs...))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer pool.Close()

	primary, err := ha.Primary(ctx)
	if err != nil {
		fmt.Println(err)
		return
	}
	proxies[primary.Name].SetRule(func(faultproxy.Message) faultproxy.Action { return faultproxy.CutBefore })
	// The clients cannot reach the primary; the monitor and the standby still can, so nothing fails over
	// until the test says so.
	if err := ha.Switchover(ctx); err != nil {
		fmt.Println(err)
		return
	}
	_, err = pool.Exec(ctx, "SELECT 1") // through the other proxy, to the new primary
	fmt.Println(err)
}
