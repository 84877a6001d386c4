package tx

// When the runner looks at the transaction id.
//
// Resolving a lost COMMIT answer needs the transaction id, read with xidSQL before COMMIT is sent. Reading it costs
// the server a statement, so the runner reads it once, in the last round trip that can have written, and not at all
// for work that only reads:
//
//   - A round trip whose statements all look like reads (readsOnly) does not ask. The session then records that it
//     did not look (xidStale): if such a transaction's COMMIT answer is lost, Run reports ErrCommitUnknown rather
//     than take it for one that wrote nothing. That is what keeps the shortcut sound: a SELECT can write through a
//     function, a view or an operator that the text does not show, and then it is simply treated as unknown.
//   - A round trip that may write asks, unless the work has a step still to come after it (the left side of a Bind
//     or Then): the id is transaction-wide, so the last round trip's answer covers every earlier one. The skipped
//     look is owed; the next round trip asks whatever its statements are, and if there is none, COMMIT carries it.
//
// Where the text is misjudged, the only cost is a look that could have been saved or an unknown outcome that could
// have been resolved; the runner never concludes "wrote nothing" without having looked after the last statement.

// readsOnly reports whether sql looks like a statement that only reads: it starts with SELECT, WITH, VALUES, TABLE
// or SHOW and contains none of the words that write (INSERT, UPDATE, DELETE, MERGE, INTO for SELECT INTO, COPY,
// CALL, DO, LOCK, and nextval and setval, which assign a transaction id). Words inside string literals or
// identifiers count too, which errs on the side of looking. It does not allocate.
func readsOnly(sql string) bool {
	first := true
	for i := 0; i < len(sql); {
		c := sql[i]
		if !isWordByte(c) {
			i++
			continue
		}
		j := i
		for j < len(sql) && isWordByte(sql[j]) {
			j++
		}
		w := sql[i:j]
		if first {
			if !oneOf(w, "select", "with", "values", "table", "show") {
				return false
			}
			first = false
		} else if oneOf(w, "insert", "update", "delete", "merge", "into", "copy", "call", "do", "lock",
			"nextval", "setval") {
			return false
		}
		i = j
	}
	return !first
}

func isWordByte(c byte) bool {
	return c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

// oneOf reports whether w equals one of the lower-case words, ignoring ASCII case.
func oneOf(w string, words ...string) bool {
	for _, k := range words {
		if len(w) == len(k) && equalFoldASCII(w, k) {
			return true
		}
	}
	return false
}

func equalFoldASCII(w, lower string) bool {
	for i := 0; i < len(w); i++ {
		c := w[i]
		if c >= 'A' && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != lower[i] {
			return false
		}
	}
	return true
}

// mayWrite reports whether any of stmts may write.
func mayWrite(stmts []stmt) bool {
	for i := range stmts {
		if !stmts[i].reads {
			return true
		}
	}
	return false
}
