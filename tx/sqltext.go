package tx

import "strings"

// A lexer of SQL text, not a parser: enough to read a statement's first keywords and to count statements, with
// comments skipped and nothing inside quotes taken for a word or a ';'. The transaction-id look's judgements of text
// (probe.go) need less and scan words only.

// savepointRollback reports whether the last statement of sql (the one a tag answers for) is ROLLBACK [WORK |
// TRANSACTION] TO ...: its leading words, with comments skipped and nothing inside quotes taken for a word or a ';'.
func savepointRollback(sql string) bool {
	words := lastStatementWords(sql, 3)
	if len(words) > 0 && !oneOf(words[0], "rollback") {
		return false
	}
	if len(words) > 1 && oneOf(words[1], "work", "transaction") {
		words = words[1:]
	}
	return len(words) > 1 && oneOf(words[1], "to")
}

// endsTransaction reports whether sql, by its first words, is a statement that ends the transaction: COMMIT, END,
// ROLLBACK or ABORT (not ROLLBACK TO a savepoint), or PREPARE TRANSACTION, with or without AND CHAIN. For a round trip
// whose command tags could not all be read (see session.afterClientFailure).
func endsTransaction(sql string) bool {
	return endsWords(lastStatementWords(sql, 3))
}

// mayEnd reports whether any statement of sql ends the transaction (see endsWords), not only the last one, whose tag
// endsTransaction judges: a COMMIT first in a text of several statements runs too. It has a fast path for the usual
// text, with no ';' and a first word that ends nothing, answered without scanning on; nothing allocates: it runs on
// every statement built and every one Func code sends.
func mayEnd(sql string) bool {
	if strings.IndexByte(sql, ';') < 0 {
		l := lexer{sql: sql}
		if kind, first := l.next(); kind == tokWord && !oneOf(first, "commit", "end", "rollback", "abort", "prepare") {
			return false
		}
	}
	var words, piece [3]string // the leading words of the statement, and of the body's statement being read
	n, m := 0, 0
	var st statement
	for l := (lexer{sql: sql}); ; {
		kind, tok := l.next()
		switch {
		case kind == tokEnd:
			return endsWords(words[:n])
		case kind == tokSemicolon && st.ends():
			if endsWords(words[:n]) {
				return true
			}
			n, m, st = 0, 0, statement{}
			continue
		case kind == tokSemicolon:
			// A statement of a routine's body, which cannot end the transaction: one that reads as COMMIT, ROLLBACK,
			// ABORT or PREPARE TRANSACTION is one the lexer took for part of a body by mistake, and counts. END is
			// left to the lexer: it closes bodies.
			if m > 0 && !oneOf(piece[0], "end") && endsWords(piece[:m]) {
				return true
			}
			m = 0
		case kind == tokWord || kind == tokLiteral || kind == tokOther && tok == "(": // "(": see endsWords' PREPARE
			if kind == tokLiteral {
				tok = ""
			}
			if n < len(words) {
				words[n] = tok
				n++
			}
			if m < len(piece) {
				piece[m] = tok
				m++
			}
		}
		st.see(kind, tok)
	}
}

// endsWords reports whether a statement whose leading words are words ends the transaction: COMMIT, END, ABORT,
// ROLLBACK (not ROLLBACK [WORK | TRANSACTION] TO a savepoint) or PREPARE TRANSACTION.
func endsWords(words []string) bool {
	if len(words) == 0 {
		return false
	}
	switch {
	case oneOf(words[0], "commit", "end", "abort"):
		return true
	case oneOf(words[0], "rollback"):
		rest := words[1:]
		if len(rest) > 0 && oneOf(rest[0], "work", "transaction") {
			rest = rest[1:]
		}
		return len(rest) == 0 || !oneOf(rest[0], "to")
	case oneOf(words[0], "prepare"):
		// PREPARE transaction [(types)] AS ... prepares a statement so named (an unreserved keyword); PREPARE
		// TRANSACTION followed by anything else ends the transaction, whatever its string is written as ('gid',
		// E'gid', U&'gid').
		return len(words) > 1 && oneOf(words[1], "transaction") && (len(words) < 3 || !oneOf(words[2], "(", "as"))
	}
	return false
}

// lastStatementWords returns up to n leading words of the last non-empty statement of sql. Comments (-- and nested
// /* */) are skipped; a quoted string, identifier or dollar-quoted body counts as one word that is no keyword (""),
// and an opening parenthesis as the word "(".
// It is a lexer, not a parser: enough to read a statement's first keywords.
func lastStatementWords(sql string, n int) []string {
	var words, last []string // the statement being read, and the last non-empty one before it
	var st statement
	for l := (lexer{sql: sql}); ; {
		kind, tok := l.next()
		switch {
		case kind == tokEnd:
			if len(words) == 0 {
				return last
			}
			return words
		case kind == tokSemicolon && st.ends():
			if len(words) > 0 {
				last = words
			}
			words, st = nil, statement{}
		case kind == tokWord:
			words = appendWord(words, tok, n)
		case kind == tokLiteral:
			words = appendWord(words, "", n)
		case kind == tokOther && tok == "(": // see endsWords' PREPARE
			words = appendWord(words, "(", n)
		}
		st.see(kind, tok)
	}
}

// severalStatements reports whether sql holds more than one statement: a ';' outside quotes, comments and a
// BEGIN ATOMIC body with more than blanks and comments after it. Texts without a ';' are answered without scanning.
func severalStatements(sql string) bool {
	if strings.IndexByte(sql, ';') < 0 {
		return false
	}
	seen := false // a statement has begun
	var st statement
	for l := (lexer{sql: sql}); ; {
		kind, tok := l.next()
		switch {
		case kind == tokEnd:
			return false
		case kind == tokSemicolon && st.ends():
			if seen && l.more() {
				return true
			}
			st = statement{}
		default:
			seen = true
		}
		st.see(kind, tok)
	}
}

// noStatement reports whether sql holds nothing but blanks, comments and ';'s: no statement, for which the server
// returns no result at all under the simple protocol, where the results of the statements after it would be read
// one place off.
func noStatement(sql string) bool {
	if i := nextToken(sql, 0); i < len(sql) && sql[i] != ';' {
		return false // the usual case, a statement's first word, found without lexing on
	}
	for l := (lexer{sql: sql}); ; {
		switch kind, _ := l.next(); kind {
		case tokEnd:
			return true
		case tokSemicolon:
		default:
			return false
		}
	}
}

// changesSchema reports whether sql may change what the names of a statement after it refer to: DDL (CREATE, ALTER,
// DROP, IMPORT FOREIGN SCHEMA), DO and CALL (which may run DDL), DISCARD (temporary tables), a SET or RESET of the
// search path or the role, a SELECT INTO (which creates a table), an EXPLAIN of one of these, or a text of several
// statements. Plain DML, and settings that change no name, do not. A function that makes a table when a SELECT calls
// it is not seen.
func changesSchema(sql string) bool {
	if severalStatements(sql) {
		return true
	}
	l := lexer{sql: sql}
	kind, first := l.next()
	switch {
	case kind != tokWord:
		return kind != tokEnd // "(SELECT ...) UNION ...": not worth reading further
	case oneOf(first, "create", "alter", "drop", "import", "do", "call", "discard"):
		return true
	case oneOf(first, "set", "reset"):
		return l.setsNames(oneOf(first, "reset"))
	case oneOf(first, "select", "with", "explain"):
		return l.makesTable(oneOf(first, "explain"))
	}
	return false
}

// setsNames reports whether the rest of a SET (or, with reset, a RESET) is about a setting that changes what names
// refer to: the search path (search_path, SCHEMA), the role ("$user" in the search path is the role's: ROLE, SESSION
// AUTHORIZATION, session_authorization), or every setting (RESET ALL). A quoted name is taken for one. SET CONSTRAINTS ALL, SET LOCAL
// app.role and SET TRANSACTION are not.
func (l *lexer) setsNames(reset bool) bool {
	kind, name := l.next()
	scoped := kind == tokWord && oneOf(name, "local", "session")
	session := scoped && oneOf(name, "session") // SET SESSION AUTHORIZATION, RESET SESSION AUTHORIZATION
	if scoped {
		kind, name = l.next()
	}
	switch {
	case kind == tokLiteral:
		return true
	case kind != tokWord:
		return false
	case oneOf(name, "authorization"):
		return session
	case oneOf(name, "session"): // SET LOCAL SESSION AUTHORIZATION
		kind, name = l.next()
		return kind == tokWord && oneOf(name, "authorization")
	case oneOf(name, "search_path", "schema", "role", "session_authorization"):
		return l.nextIsNot(".") // app.role is a setting of its own
	case oneOf(name, "all"):
		return reset
	}
	return false
}

// nextIsNot reports whether the next token is not the byte tok.
func (l *lexer) nextIsNot(tok string) bool {
	kind, t := l.next()
	return kind != tokOther || t != tok
}

// makesTable reports whether the tokens left hold an INTO that is not INSERT INTO or MERGE INTO (SELECT INTO makes a
// table), or, with create, the word CREATE (EXPLAIN ANALYZE CREATE TABLE AS).
func (l *lexer) makesTable(create bool) bool {
	prev := ""
	for {
		kind, tok := l.next()
		switch {
		case kind == tokEnd:
			return false
		case kind != tokWord:
			prev = ""
			continue
		case oneOf(tok, "into") && !oneOf(prev, "insert", "merge"):
			return true
		case create && oneOf(tok, "create"):
			return true
		}
		prev = tok
	}
}

// A token's kind, as the lexer tells them apart.
const (
	tokEnd       = iota
	tokWord      // a bare word: a keyword, an identifier or a number
	tokLiteral   // a quoted string or identifier, a dollar-quoted body, or a parameter ($1)
	tokSemicolon // ';'
	tokOther     // any other byte: an operator, a parenthesis...
)

// lexer yields the tokens of a SQL text, comments and blanks skipped.
type lexer struct {
	sql string
	i   int
}

// next returns the next token's kind and, for a word or another byte, its text.
func (l *lexer) next() (int, string) {
	sql := l.sql
	l.i = nextToken(sql, l.i)
	if l.i >= len(sql) {
		return tokEnd, ""
	}
	i := l.i
	switch c := sql[i]; {
	case c == ';':
		l.i++
		return tokSemicolon, ";"
	case c == '\'' || c == '"':
		l.i = skipQuoted(sql, i, c)
		return tokLiteral, ""
	case c == '$':
		l.i = skipDollar(sql, i)
		return tokLiteral, ""
	case isWordByte(c) || c >= 0x80:
		// As PostgreSQL's scanner reads an identifier: '$' goes on one (x$a$ is a name, not x and a dollar quote),
		// and so does any byte of a multibyte character.
		for l.i < len(sql) && identByte(sql[l.i]) {
			l.i++
		}
		return tokWord, sql[i:l.i]
	default:
		l.i++
		return tokOther, sql[i:l.i]
	}
}

// more reports whether a token other than ';' follows.
func (l *lexer) more() bool {
	j := nextToken(l.sql, l.i)
	return j < len(l.sql) && l.sql[j] != ';'
}

// statement follows what decides whether a ';' ends the statement being read: the body of a function or procedure
// written in SQL (CREATE [OR REPLACE] FUNCTION|PROCEDURE ... BEGIN ATOMIC ...; ...; END) holds ';'s of its own. In
// such a statement, outside parentheses, BEGIN ATOMIC opens a body, and the END that closes it is the first word of
// one of the body's statements, each of which ends with a ';'. Inside one of them, CASE opens an expression that an
// END closes, and the ';' closes every CASE left open, since no expression spans one. So a word misread there (a field
// or a column label named case or end: (p).case, $1.end, SELECT 1 case) costs at most the rest of its statement, and
// never the count of open bodies, which alone decides where the routine's statement ends. psql opens a body on BEGIN
// alone; requiring ATOMIC keeps a routine named begin from hiding a second statement.
type statement struct {
	lead   [4]byte // first letters of the leading words, for CREATE [OR REPLACE] FUNCTION|PROCEDURE
	words  int
	paren  int
	bodies int  // open BEGIN ATOMIC bodies
	cases  int  // CASE expressions open in the body's statement being read
	first  bool // the next word is the first of a body's statement
	begin  bool // the last token was the word BEGIN
	name   bool // the last token was '.' after a name, or the word AS: the next word is a name (p.end, AS end)
	ident  bool // the last token ends a name or a value a '.' can select a field of: a name, ')', ']', $1
}

func (st *statement) see(kind int, tok string) {
	begin, name, first := st.begin, st.name, st.first
	st.begin, st.first = false, false
	// A '.' after a number is its decimal point (2. END), not a qualifier.
	st.name = kind == tokOther && tok == "." && st.ident || kind == tokWord && oneOf(tok, "as")
	st.ident = kind == tokLiteral || kind == tokWord && (tok[0] < '0' || tok[0] > '9') ||
		kind == tokOther && (tok == ")" || tok == "]")
	switch {
	case kind == tokSemicolon:
		st.paren, st.cases, st.first = 0, 0, st.bodies > 0
	case kind == tokOther && tok == "(":
		st.paren++
	case kind == tokOther && tok == ")":
		st.paren = max(st.paren-1, 0)
	case kind == tokWord:
		if st.words < len(st.lead) && oneOf(tok, "create", "or", "replace", "function", "procedure") {
			st.lead[st.words] = tok[0] | 0x20
		}
		st.words++
		if !st.routine() || st.paren > 0 || name {
			return
		}
		switch {
		case oneOf(tok, "begin"):
			st.begin = true
		case oneOf(tok, "atomic") && begin && st.bodies == 0:
			// Only the routine's own body: inside it, BEGIN ATOMIC is a column and its label (SELECT begin atomic),
			// as no body holds another routine's.
			st.bodies++
			st.first = true
		case st.bodies == 0:
		case oneOf(tok, "case"):
			st.cases++
		case oneOf(tok, "end") && st.cases > 0:
			st.cases--
		case oneOf(tok, "end") && first:
			st.bodies--
		}
	}
}

// routine reports whether the statement began CREATE [OR REPLACE] FUNCTION or PROCEDURE.
func (st *statement) routine() bool {
	l := st.lead
	return l[0] == 'c' && (l[1] == 'f' || l[1] == 'p' || l[1] == 'o' && l[2] == 'r' && (l[3] == 'f' || l[3] == 'p'))
}

// ends reports whether a ';' met now ends the statement: it is not inside a BEGIN ATOMIC body.
func (st *statement) ends() bool { return st.bodies == 0 }

// nextToken returns the position of the next byte of sql from i that is neither blank nor in a comment.
func nextToken(sql string, i int) int {
	for i < len(sql) {
		switch c := sql[i]; {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v': // \v: PostgreSQL 16 on
			i++
		case c == '-' && i+1 < len(sql) && sql[i+1] == '-':
			for i < len(sql) && sql[i] != '\n' && sql[i] != '\r' { // PostgreSQL ends one at either
				i++
			}
		case c == '/' && i+1 < len(sql) && sql[i+1] == '*':
			i = skipBlockComment(sql, i)
		default:
			return i
		}
	}
	return i
}

func appendWord(words []string, w string, n int) []string {
	if len(words) < n {
		return append(words, w)
	}
	return words
}

// skipBlockComment returns the position after the /* */ comment starting at i; PostgreSQL's nest.
func skipBlockComment(sql string, i int) int {
	depth := 0
	for i < len(sql) {
		switch {
		case strings.HasPrefix(sql[i:], "/*"):
			depth, i = depth+1, i+2
		case strings.HasPrefix(sql[i:], "*/"):
			depth, i = depth-1, i+2
			if depth == 0 {
				return i
			}
		default:
			i++
		}
	}
	return i
}

// skipQuoted returns the position after the string or identifier quoted with q starting at i. A doubled quote stays
// inside. A backslash escapes the next byte only in an escape string (E'...'): in a standard one, the default since
// PostgreSQL 9.1 (standard_conforming_strings), 'C:\' is a whole literal, and taking its backslash as an escape would
// run the literal on over a following statement.
func skipQuoted(sql string, i int, q byte) int {
	escapes := q == '\'' && escapeString(sql, i)
	for i++; i < len(sql); i++ {
		switch sql[i] {
		case '\\':
			if escapes {
				i++
			}
		case q:
			if i+1 < len(sql) && sql[i+1] == q {
				i++
				continue
			}
			if q == '\'' {
				if j := quoteContinues(sql, i+1); j > 0 {
					i = j // 'a'<newline>'b' is one string, in the escape mode of its first part
					continue
				}
			}
			return i + 1
		}
	}
	return i
}

// quoteContinues returns the position of the quote that continues a string literal whose closing quote is right
// before i, or -1: as PostgreSQL reads it, the string goes on after blanks and -- comments that hold a line break.
func quoteContinues(sql string, i int) int {
	newline := false
	for i < len(sql) {
		switch c := sql[i]; {
		case c == '\n' || c == '\r':
			newline = true
			i++
		case c == ' ' || c == '\t' || c == '\f' || c == '\v':
			i++
		case c == '-' && i+1 < len(sql) && sql[i+1] == '-':
			for i < len(sql) && sql[i] != '\n' && sql[i] != '\r' {
				i++
			}
		case c == '\'' && newline:
			return i
		default:
			return -1
		}
	}
	return -1
}

// escapeString reports whether the quote at i opens an escape string: E or e right before it, not ending a word.
func escapeString(sql string, i int) bool {
	return i >= 1 && (sql[i-1] == 'E' || sql[i-1] == 'e') && (i == 1 || !identByte(sql[i-2]))
}

// identByte reports whether c goes on an identifier or a keyword: a letter, a digit, '_', '$', or a byte of a
// multibyte character.
func identByte(c byte) bool { return isWordByte(c) || c == '$' || c >= 0x80 }

// skipDollar returns the position after the dollar-quoted body starting at i ($tag$...$tag$), after a parameter
// ($1), or after the '$' of anything else. A tag is made as an identifier is, multibyte characters included, but of no
// '$' and not starting with a digit.
func skipDollar(sql string, i int) int {
	j := i + 1
	if j < len(sql) && sql[j] >= '0' && sql[j] <= '9' {
		for j < len(sql) && sql[j] >= '0' && sql[j] <= '9' {
			j++
		}
		return j // a parameter: one token, which a '.' can select a field of ($1.end)
	}
	for j < len(sql) && (sql[j] >= 0x80 || isWordByte(sql[j]) && (sql[j] < '0' || sql[j] > '9' || j > i+1)) {
		j++
	}
	if j >= len(sql) || sql[j] != '$' {
		return i + 1
	}
	tag := sql[i : j+1]
	if k := strings.Index(sql[j+1:], tag); k >= 0 {
		return j + 1 + k + len(tag)
	}
	return len(sql)
}
