// Package faultproxy is a loopback TCP proxy between a PostgreSQL client and server that cuts connections at
// chosen frontend protocol messages, so tests can reproduce ambiguous commits and random connection resets.
//
// # Model
//
// [Start] listens on 127.0.0.1 and forwards every accepted connection to a loopback target. The
// client->server stream is split into frontend messages after the startup phase; each message is shown, as a
// [Message], to the current [Rule], which answers with an [Action]:
//
//   - [Forward] passes the message on.
//   - [CutBefore] closes both connections; the server never sees the message.
//   - [CutAfter] forwards the message (and whatever else the client had already sent), then closes both
//     connections. No reply to the message reaches the client, so a COMMIT cut this way leaves the client
//     with an error although the server may well have committed.
//
// The server->client stream is copied unchanged. A cut resets the client's connection (SO_LINGER 0), so the
// client always sees an error rather than a hang; the server sees an orderly end of stream after the last
// forwarded byte, the same as a client that vanished.
//
// # Startup
//
// SSLRequest and GSSENCRequest packets are forwarded and the server's one-byte answer flows back unchanged. If
// the server accepts encryption, the proxy cannot read the stream any more and relays it raw; the rule is then
// never consulted. Tests therefore connect with sslmode=disable or prefer against a server without TLS.
//
// # Example
//
//	p, err := faultproxy.Start("127.0.0.1:5432")
//	if err != nil { ... }
//	defer p.Close()
//	p.SetRule(func(m faultproxy.Message) faultproxy.Action {
//		if faultproxy.IsCommit(m) {
//			return faultproxy.CutAfter // the commit happens, the client never hears about it
//		}
//		return faultproxy.Forward
//	})
//	// point the client at p.Addr()
package faultproxy
