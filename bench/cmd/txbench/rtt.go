package main

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pgxact/pgxact/bench/internal/netdelay"
)

// delayed returns dbs with each connection string going through a netdelay proxy of its own that adds rtt to every
// round trip, and a function that closes the proxies. With rtt 0 it returns dbs as they are.
func delayed(dbs databases, rtt time.Duration) (databases, func(), error) {
	var proxies []*netdelay.Proxy
	closeAll := func() {
		for _, p := range proxies {
			_ = p.Close()
		}
	}
	if rtt == 0 {
		return dbs, closeAll, nil
	}
	for _, cs := range []*string{&dbs.primary, &dbs.standby} {
		if *cs == "" {
			continue
		}
		p, proxied, err := throughProxy(*cs, rtt)
		if err != nil {
			closeAll()
			return dbs, nil, err
		}
		proxies = append(proxies, p)
		*cs = proxied
	}
	return dbs, closeAll, nil
}

// throughProxy starts a proxy in front of connString's server and returns it and connString pointing at it.
func throughProxy(connString string, rtt time.Duration) (*netdelay.Proxy, string, error) {
	config, err := pgconn.ParseConfig(connString)
	if err != nil {
		return nil, "", fmt.Errorf("txbench: -rtt: %w", err)
	}
	if strings.HasPrefix(config.Host, "/") || len(config.Fallbacks) > 0 {
		return nil, "", fmt.Errorf("txbench: -rtt needs one server over TCP, not %q", config.Host)
	}
	p, err := netdelay.Start(net.JoinHostPort(config.Host, strconv.Itoa(int(config.Port))), rtt)
	if err != nil {
		return nil, "", fmt.Errorf("txbench: -rtt: %w", err)
	}
	proxied, err := withAddr(connString, p.Addr())
	if err != nil {
		_ = p.Close()
		return nil, "", err
	}
	return p, proxied, nil
}

// withAddr returns connString connecting to addr ("host:port") instead, in the same syntax, every other setting
// kept: a URL's host is replaced; a keyword/value string gets host and port appended, and the last ones win.
func withAddr(connString, addr string) (string, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", fmt.Errorf("txbench: %w", err)
	}
	if !strings.HasPrefix(connString, "postgres://") && !strings.HasPrefix(connString, "postgresql://") {
		return connString + " host=" + host + " port=" + port, nil
	}
	u, err := url.Parse(connString)
	if err != nil {
		return "", fmt.Errorf("txbench: %w", err)
	}
	u.Host = addr
	q := u.Query()
	if q.Has("host") || q.Has("port") {
		q.Del("host")
		q.Del("port")
		u.RawQuery = q.Encode()
	}
	return u.String(), nil
}

// pings is how many round trips measureRTT times.
const pings = 21

// measureRTT returns the median time of an empty query's round trip on a new connection to connString.
func measureRTT(ctx context.Context, connString string) (time.Duration, error) {
	conn, err := pgconn.Connect(ctx, connString)
	if err != nil {
		return 0, fmt.Errorf("txbench: %w", err)
	}
	defer conn.Close(context.Background())
	took := make([]time.Duration, 0, pings)
	for range pings {
		began := time.Now()
		if err := conn.Ping(ctx); err != nil {
			return 0, fmt.Errorf("txbench: ping: %w", err)
		}
		took = append(took, time.Since(began))
	}
	slices.Sort(took)
	return took[len(took)/2], nil
}

// network describes how the benchmark reaches the server: directly, or through the proxy with the round trips
// measured through it and without it.
func network(ctx context.Context, rtt time.Duration, direct, proxied string) (string, error) {
	if rtt == 0 {
		return "over loopback TCP", nil
	}
	through, err := measureRTT(ctx, proxied)
	if err != nil {
		return "", err
	}
	without, err := measureRTT(ctx, direct)
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("over loopback TCP through a proxy adding %v to every round trip (netdelay; an empty query's "+
		"round trip, median of %d: %s through it, %s direct)", rtt, pings, ms(through), ms(without)), nil
}

func ms(d time.Duration) string {
	return strconv.FormatFloat(float64(d.Microseconds())/1000, 'f', 3, 64) + " ms"
}
