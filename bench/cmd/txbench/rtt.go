package main

import (
	"cmp"
	"context"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pgxact/pgxact/bench/internal/netdelay"
)

// How -rtt delays round trips (-rtt-via).
const (
	viaClient = "client" // each pool connection's writes wait the round trip (netdelay.Conn); pgbench via a proxy
	viaProxy  = "proxy"  // every connection goes through a netdelay.Proxy
)

// route is how the benchmark reaches its databases: the connection strings its pools use, the dial function they
// use (nil: pgconn's own), and what pgbench connects to ("": the primary pool's server).
type route struct {
	dbs     databases
	dial    pgconn.DialFunc
	pgbench string
	close   func() // stops the proxies, if any
}

// delayed returns the route to dbs that adds rtt to every round trip, the way via says, with rtt 0 the direct one.
// With -rtt-via client the pools dial through netdelay.Dialer and only pgbench, a C program, goes through a proxy,
// and only if it runs.
func delayed(ctx context.Context, dbs databases, rtt time.Duration, via string, withPgbench bool) (route, error) {
	var proxies []*netdelay.Proxy
	r := route{dbs: dbs, close: func() {
		for _, p := range proxies {
			_ = p.Close()
		}
	}}
	if rtt == 0 {
		return r, nil
	}
	proxied := func(cs string) (string, error) {
		p, out, err := throughProxy(ctx, cs, rtt)
		if err != nil {
			r.close()
			return "", err
		}
		proxies = append(proxies, p)
		return out, nil
	}
	if via == viaClient {
		dial, err := netdelay.Dialer(rtt, (&net.Dialer{KeepAlive: 5 * time.Minute}).DialContext)
		if err != nil {
			return r, fmt.Errorf("txbench: -rtt: %w", err)
		}
		r.dial = pgconn.DialFunc(dial)
		if withPgbench {
			r.pgbench, err = proxied(dbs.primary)
		} else {
			_, err = tcpTarget(ctx, dbs.primary) // refused as the proxy would refuse it
		}
		return r, err
	}
	for _, cs := range []*string{&r.dbs.primary, &r.dbs.standby} {
		if *cs == "" {
			continue
		}
		out, err := proxied(*cs)
		if err != nil {
			return r, err
		}
		*cs = out
	}
	return r, nil
}

// tcpTarget returns the "ip:port" of connString's one server over TCP. A host name (localhost) is resolved, and
// must name loopback addresses only: the proxy forwards to one of them.
func tcpTarget(ctx context.Context, connString string) (string, error) {
	config, err := pgconn.ParseConfig(connString)
	if err != nil {
		return "", fmt.Errorf("txbench: -rtt: %w", err)
	}
	if strings.HasPrefix(config.Host, "/") || !oneServer(config) {
		return "", fmt.Errorf("txbench: -rtt needs one server over TCP, not %q", config.Host)
	}
	ip, err := loopbackIP(ctx, config.Host)
	if err != nil {
		return "", err
	}
	return net.JoinHostPort(ip.String(), strconv.Itoa(int(config.Port))), nil
}

func ipv4(a netip.Addr) int {
	if a.Unmap().Is4() {
		return 1
	}
	return 0
}

// loopbackIP returns host's address, preferring IPv4, when every address it resolves to is a loopback one.
func loopbackIP(ctx context.Context, host string) (netip.Addr, error) {
	if ip, err := netip.ParseAddr(host); err == nil {
		return ip, nil // netdelay checks it
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	ips, err := net.DefaultResolver.LookupNetIP(ctx, "ip", host)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("txbench: -rtt: %w", err)
	}
	slices.SortStableFunc(ips, func(a, b netip.Addr) int { return cmp.Compare(ipv4(b), ipv4(a)) })
	for _, ip := range ips {
		if !ip.IsLoopback() {
			return netip.Addr{}, fmt.Errorf("txbench: -rtt: %q resolves to %v, which is not a loopback address", host, ip)
		}
	}
	if len(ips) == 0 {
		return netip.Addr{}, fmt.Errorf("txbench: -rtt: %q resolves to no address", host)
	}
	return ips[0].Unmap(), nil
}

// oneServer reports whether every fallback of config is its own server again: sslmode=prefer (the default) adds
// one without TLS for the same host and port, which is still one server.
func oneServer(config *pgconn.Config) bool {
	for _, f := range config.Fallbacks {
		if f.Host != config.Host || f.Port != config.Port {
			return false
		}
	}
	return true
}

// throughProxy starts a proxy in front of connString's server and returns it and connString pointing at it.
func throughProxy(ctx context.Context, connString string, rtt time.Duration) (*netdelay.Proxy, string, error) {
	target, err := tcpTarget(ctx, connString)
	if err != nil {
		return nil, "", err
	}
	p, err := netdelay.Start(target, rtt)
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

// measureRTT returns the median time of an empty query's round trip on a new connection to connString, dialed with
// dial (nil: pgconn's own).
func measureRTT(ctx context.Context, connString string, dial pgconn.DialFunc) (time.Duration, error) {
	config, err := pgconn.ParseConfig(connString)
	if err != nil {
		return 0, fmt.Errorf("txbench: %w", err)
	}
	if dial != nil {
		config.DialFunc = dial
	}
	conn, err := pgconn.ConnectConfig(ctx, config)
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

// network describes how the benchmark reaches the server: directly, or with the delay r adds, its round trips
// measured with it and without it.
func network(ctx context.Context, rtt time.Duration, direct string, r route) (string, error) {
	if rtt == 0 {
		return "over loopback TCP", nil
	}
	through, err := measureRTT(ctx, r.dbs.primary, r.dial)
	if err != nil {
		return "", err
	}
	without, err := measureRTT(ctx, direct, nil)
	if err != nil {
		return "", err
	}
	how := fmt.Sprintf("through a proxy adding %v to every round trip (netdelay.Proxy", rtt)
	if r.dial != nil {
		how = fmt.Sprintf("with every client connection's writes held back %v (netdelay.Conn, no relay", rtt)
		if r.pgbench != "" {
			how += "; pgbench through a proxy adding the same"
		}
	}
	return fmt.Sprintf("over loopback TCP %s; an empty query's round trip, median of %d: %s with the delay, %s "+
		"direct)", how, pings, ms(through), ms(without)), nil
}

func ms(d time.Duration) string {
	return strconv.FormatFloat(float64(d.Microseconds())/1000, 'f', 3, 64) + " ms"
}
