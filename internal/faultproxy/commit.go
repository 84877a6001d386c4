package faultproxy

import (
	"slices"
	"strings"
)

// IsCommit reports whether m ends a transaction with a commit: a 'Q', 'P' or 'B' message whose SQL, or the
// last statement of a multi-statement simple query, is COMMIT or END, optionally followed by WORK or
// TRANSACTION and by AND [NO] CHAIN. Case, whitespace, comments and trailing semicolons do not matter;
// COMMIT PREPARED is not a commit of the session's transaction and does not count.
func IsCommit(m Message) bool {
	switch m.Type {
	case 'Q', 'P', 'B':
		return isCommitStatement(lastStatement(m.SQL))
	default:
		return false
	}
}

// isCommitStatement matches the words of COMMIT | END [WORK | TRANSACTION] [AND [NO] CHAIN].
func isCommitStatement(words []string) bool {
	if len(words) == 0 || (words[0] != "commit" && words[0] != "end") {
		return false
	}
	rest := words[1:]
	if len(rest) > 0 && (rest[0] == "work" || rest[0] == "transaction") {
		rest = rest[1:]
	}
	return len(rest) == 0 ||
		slices.Equal(rest, []string{"and", "chain"}) ||
		slices.Equal(rest, []string{"and", "no", "chain"})
}

// lastStatement returns the lower-cased words of the last non-empty statement in sql. A quoted string,
// quoted identifier or dollar-quoted body becomes one placeholder word and comments vanish, so a ';' or
// "commit" inside them is not taken for syntax. It is a lexer, not a parser: good enough to tell a commit.
func lastStatement(sql string) []string {
	var last, cur []string
	for i := 0; i < len(sql); {
		c := sql[i]
		switch {
		case c == ';':
			if len(cur) > 0 {
				last, cur = cur, nil
			}
			i++
		case isSpace(c):
			i++
		case strings.HasPrefix(sql[i:], "--"):
			i = skipLineComment(sql, i)
		case strings.HasPrefix(sql[i:], "/*"):
			i = skipBlockComment(sql, i)
		case c == '\'' || c == '"':
			i = skipQuoted(sql, i, c)
			cur = append(cur, string(c))
		case c == '$' && dollarTagLen(sql[i:]) > 0:
			i = skipDollarQuoted(sql, i)
			cur = append(cur, "$")
		default:
			j := wordEnd(sql, i)
			cur = append(cur, strings.ToLower(sql[i:j]))
			i = j
		}
	}
	if len(cur) > 0 {
		last = cur
	}
	return last
}

func isSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'
}

// wordEnd returns the end of the word starting at i: the next space, semicolon, quote or comment.
func wordEnd(sql string, i int) int {
	for j := i + 1; j < len(sql); j++ {
		c := sql[j]
		if isSpace(c) || c == ';' || c == '\'' || c == '"' ||
			strings.HasPrefix(sql[j:], "--") || strings.HasPrefix(sql[j:], "/*") {
			return j
		}
	}
	return len(sql)
}

func skipLineComment(sql string, i int) int {
	if k := strings.IndexByte(sql[i:], '\n'); k >= 0 {
		return i + k + 1
	}
	return len(sql)
}

// skipBlockComment skips a /* */ comment, which nests in PostgreSQL.
func skipBlockComment(sql string, i int) int {
	depth := 0
	for j := i; j < len(sql)-1; j++ {
		switch sql[j : j+2] {
		case "/*":
			depth++
			j++
		case "*/":
			depth--
			j++
			if depth == 0 {
				return j + 1
			}
		}
	}
	return len(sql)
}

// skipQuoted skips a string or identifier quoted with q, where a doubled q stands for itself.
func skipQuoted(sql string, i int, q byte) int {
	j := i + 1
	for {
		k := strings.IndexByte(sql[j:], q)
		if k < 0 {
			return len(sql)
		}
		j += k + 1
		if j >= len(sql) || sql[j] != q {
			return j
		}
		j++
	}
}

// dollarTagLen returns the length of the $tag$ opening s, or 0 if s does not start with one. $1 is a
// parameter, not a tag.
func dollarTagLen(s string) int {
	for j := 1; j < len(s); j++ {
		c := s[j]
		switch {
		case c == '$':
			return j + 1
		case c == '_' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || c >= 0x80:
		case '0' <= c && c <= '9' && j > 1:
		default:
			return 0
		}
	}
	return 0
}

// skipDollarQuoted skips a $tag$ ... $tag$ body.
func skipDollarQuoted(sql string, i int) int {
	tag := sql[i : i+dollarTagLen(sql[i:])]
	if k := strings.Index(sql[i+len(tag):], tag); k >= 0 {
		return i + len(tag) + k + len(tag)
	}
	return len(sql)
}
