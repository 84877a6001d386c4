package pgtest_test

import (
	"context"
	"fmt"
	"io"
	"net"

	"github.com/jackc/pgx/v5/pgxpool"

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

// A partition between the clients and a primary that keeps running: the clients reach the nodes through proxies
// of the test's own, here plain TCP relays, and the primary's stops taking connections.
func ExampleHA_ConnStringVia() {
	ctx := context.Background()
	ha, err := pgtest.StartHA(ctx, pgtest.HAOptions{})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer ha.Stop()
	// relay joins each connection accepted on ln to a new one to addr, until ln is closed.
	relay := func(ln net.Listener, addr string) {
		for {
			client, err := ln.Accept()
			if err != nil {
				return // ln closed: the cut
			}
			go func() {
				defer client.Close()
				server, err := net.Dial("tcp", addr)
				if err != nil {
					return
				}
				defer server.Close()
				go func() {
					_, _ = io.Copy(server, client)
					_ = server.Close() // the client left: end the copy the other way too
				}()
				_, _ = io.Copy(client, server)
			}()
		}
	}
	var addrs []string
	proxies := map[string]net.Listener{}
	for _, node := range ha.Nodes() {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			fmt.Println(err)
			return
		}
		defer ln.Close()
		go relay(ln, node.Addr)
		proxies[node.Name] = ln
		addrs = append(addrs, ln.Addr().String())
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
	_ = proxies[primary.Name].Close()
	// The clients cannot connect to the primary; the monitor and the standby still can, so nothing fails over
	// until the test says so.
	if err := ha.Switchover(ctx); err != nil {
		fmt.Println(err)
		return
	}
	_, err = pool.Exec(ctx, "SELECT 1") // through the other proxy, to the new primary
	fmt.Println(err)
}
