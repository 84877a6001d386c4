package faultproxy

import (
	"bytes"
	"encoding/binary"
)

const (
	sslRequestCode    = 80877103
	gssEncRequestCode = 80877104
	// maxStartupLen is PostgreSQL's own limit on startup packets. A longer "length" means the stream is not a
	// startup packet at all, e.g. a TLS handshake after the server accepted an SSLRequest.
	maxStartupLen = 10000
	// maxMessageLen is PostgreSQL's limit on a frontend message; the server rejects anything longer, so the
	// proxy stops parsing instead of buffering it.
	maxMessageLen = 1 << 30
	// headerLen is a message's type byte plus its int32 length.
	headerLen = 5
)

// startup forwards the client's startup packets: any SSLRequest or GSSENCRequest, then the startup message.
// It returns the bytes read past the startup message and true when ordinary messages follow; false when the
// connection ended or was handed to raw, e.g. for a CancelRequest or an encrypted stream.
func (l *link) startup() ([]byte, bool) {
	var buf []byte
	for {
		var err error
		if buf, err = l.readAtLeast(buf, 8); err != nil {
			return nil, false
		}
		n, code := int(binary.BigEndian.Uint32(buf)), binary.BigEndian.Uint32(buf[4:])
		if n < 8 || n > maxStartupLen {
			l.raw(buf)
			return nil, false
		}
		if buf, err = l.readAtLeast(buf, n); err != nil || l.writeServer(buf[:n]) != nil {
			return nil, false
		}
		buf = buf[n:]
		switch {
		case code>>16 == 3: // protocol 3.x startup message
			return buf, true
		case n == 8 && (code == sslRequestCode || code == gssEncRequestCode):
			continue // the server answers with one byte; the client then starts over
		default:
			l.raw(buf)
			return nil, false
		}
	}
}

// relay splits the client's stream into messages, asks the rule about each and forwards them, until the
// client goes away or the rule cuts the connection.
func (l *link) relay(buf []byte) {
	for {
		rest, stop := l.dispatch(buf)
		if stop {
			return
		}
		if len(rest) >= headerLen && declaredLen(rest) > maxMessageLen {
			l.raw(rest)
			return
		}
		buf = buf[:copy(buf, rest)] // keep the incomplete tail at the front of the buffer
		var err error
		if buf, err = l.readClient(buf); err != nil {
			return
		}
	}
}

// dispatch acts on the complete messages at the start of buf and returns the incomplete tail. stop is true
// when the connection was cut or the server could not be written.
func (l *link) dispatch(buf []byte) (rest []byte, stop bool) {
	off := 0
	for {
		size := messageSize(buf[off:])
		if size == 0 {
			break
		}
		switch l.proxy.decide(l.decode(buf[off : off+size])) {
		case CutBefore:
			l.cut(buf[:off])
			return nil, true
		case CutAfter:
			l.cut(buf)
			return nil, true
		case Strand:
			l.strand(buf[:off])
			return nil, true
		}
		off += size
	}
	if off > 0 && l.writeServer(buf[:off]) != nil {
		return nil, true
	}
	return buf[off:], false
}

// declaredLen is the length field of the message starting at b, which must hold a header.
func declaredLen(b []byte) int { return int(binary.BigEndian.Uint32(b[1:headerLen])) }

// messageSize returns the size of the complete message at the start of b, or 0 if b does not hold one yet.
// A length below 4 is invalid; it is framed as an empty body and left for the server to reject.
func messageSize(b []byte) int {
	if len(b) < headerLen {
		return 0
	}
	size := 1 + max(declaredLen(b), 4)
	if len(b) < size {
		return 0
	}
	return size
}

// decode describes msg for the rule, and tracks prepared statements so a Bind can be shown with its SQL.
func (l *link) decode(msg []byte) Message {
	m := Message{Conn: l.id, Type: msg[0]}
	body := msg[headerLen:]
	switch m.Type {
	case 'Q': // query\0
		m.SQL, _ = cstring(body)
	case 'P': // name\0 query\0 int16 n, n*int32
		name, rest := cstring(body)
		m.SQL, _ = cstring(rest)
		l.stmts[name] = m.SQL
	case 'B': // portal\0 statement\0 ...
		_, rest := cstring(body)
		stmt, _ := cstring(rest)
		m.SQL = l.stmts[stmt]
	case 'C': // Close: 'S' name\0 for a statement, 'P' name\0 for a portal
		if len(body) > 0 && body[0] == 'S' {
			name, _ := cstring(body[1:])
			delete(l.stmts, name)
		}
	}
	return m
}

// cstring splits a NUL-terminated string off b. Without a terminator all of b is the string.
func cstring(b []byte) (string, []byte) {
	i := bytes.IndexByte(b, 0)
	if i < 0 {
		return string(b), nil
	}
	return string(b[:i]), b[i+1:]
}
