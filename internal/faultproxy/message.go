package faultproxy

import "strconv"

// Message describes one frontend message the client sent after the startup phase.
type Message struct {
	// Conn numbers proxied connections from 1 in the order they were accepted.
	Conn uint64
	// Type is the protocol message type: 'Q' simple query, 'P' Parse, 'B' Bind, 'E' Execute, 'S' Sync, ...
	Type byte
	// SQL is the query text of 'Q' and 'P' messages. For 'B' it is the text of the prepared statement being
	// bound, as tracked from earlier Parse messages on the same connection (the unnamed statement is the last
	// unnamed Parse); it is empty when that statement is unknown. Other types leave it empty.
	SQL string
}

// Action tells the proxy what to do with a [Message]. Values other than the constants below mean [Forward].
type Action int

const (
	// Forward passes the message on to the server.
	Forward Action = iota
	// CutBefore closes both connections without forwarding the message: the server never sees it. Messages
	// the client sent earlier in the same read are forwarded first.
	CutBefore
	// CutAfter forwards the message and everything else already read from the client, waits until the write
	// to the server socket completed, and closes both connections. No reply to the message reaches the client.
	CutAfter
	// Strand resets the client like CutBefore, but leaves the server's side open and silent, as a network
	// partition would: the server's session stays where it was (say, idle in a transaction) until the proxy is
	// closed or strandTimeout passes.
	Strand
)

// String returns the constant's name.
func (a Action) String() string {
	switch a {
	case Forward:
		return "Forward"
	case CutBefore:
		return "CutBefore"
	case CutAfter:
		return "CutAfter"
	case Strand:
		return "Strand"
	default:
		return "Action(" + strconv.Itoa(int(a)) + ")"
	}
}

// Rule decides what happens to each frontend message. The proxy calls it from one goroutine per connection,
// so a Rule must be safe for concurrent use; it should also be quick, because the connection waits for it.
type Rule func(m Message) Action
