package tx

// When the runner looks at the transaction id.
//
// Resolving a lost COMMIT answer needs the transaction id, read with xidSQL in a round trip whose answer arrived
// before COMMIT was sent: a look that travels with COMMIT is lost with COMMIT's answer. Reading the id costs the
// server a statement, so the runner skips the looks it can prove useless, and never the one it needs:
//
//   - A round trip that may write looks. The id is assigned by the first write, so once a look has seen it no later
//     round trip asks again: a transaction that writes is looked at once, unless a round trip that could have
//     written did not (an UPDATE that matched no row), when the next one that may write asks again.
//   - A round trip whose statements all look like reads (readsOnly) does not look while more work is to come (the
//     left side of a Bind or Then, an All part but the last): a later round trip will. The last one looks whatever
//     its statements, because a SELECT can write through a function, a view or an operator that the text does not
//     show, and "the transaction had no id, so it wrote nothing and its result stands" needs a look after the last
//     statement. Work that ends in Go (a Bind whose last step is Pure) is looked at in the COMMIT batch, and its
//     outcome is unknown if that answer is lost.
//   - User pgx code (Func) is not seen statement by statement. Its Exec with arguments that may write carries the
//     look while no id is known (execLooking); whatever else it does, COMMIT's batch looks too, unless an id was
//     found, so a lost COMMIT after user code that wrote unseen is unknown, never "wrote nothing".
//   - A read-only transaction (ReadOnly) never looks: it cannot write.
//   - A notification (NOTIFY, pg_notify) is the exception to both rules: it is delivered only if the transaction
//     commits, read-only or not, but takes a transaction id only inside COMMIT, so an id look before COMMIT sees
//     none. Once a statement's text mentions one (unseenWrite; Func's SQL too), every round trip looks until an id is
//     known, with xidAssignSQL, which assigns one on a primary: a lost COMMIT answer is then resolved like any
//     write's. A notification sent where the text does not show it (a trigger, a function, Conn()) is not seen.
//   - A ReadOnly transaction that its own SQL makes writable (SET TRANSACTION READ WRITE) is looked at from then on
//     like a read-write one.
//
// Where the text is misjudged, only the place of the look moves; the runner never concludes "wrote nothing" without
// having looked after the last statement.

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

// unseen is what the text of a statement tells the look beyond readsOnly (see unseenWrite); a bit set.
type unseen uint8

const (
	// unseenNotify: NOTIFY or pg_notify. A notification is delivered only if the transaction commits, but takes a
	// transaction id only inside COMMIT, so every earlier look sees none: the look must assign one.
	unseenNotify unseen = 1 << iota
	// unseenWritable: a ReadOnly transaction made writable (SET TRANSACTION READ WRITE right after the BEGIN it is
	// fused with, or transaction_read_only), which the runner would otherwise take for one that cannot write: it
	// must be looked at like a read-write one.
	unseenWritable
	// unseenSchema: the text may change what a later statement of the same round trip refers to (changesSchema), which
	// matters where statements are prepared ahead of their round trip (see session.useAfterSchema). Not about the look.
	unseenSchema
	// unseenEnds: the text may end the transaction (mayEnd: COMMIT, ROLLBACK... sent as SQL). Not about the look.
	unseenEnds
)

// unseenWrite classifies sql: "notify" anywhere, in any case, is unseenNotify; the words READ and WRITE (whole words,
// which a comment between them leaves whole) or "transaction_read_only" are unseenWritable; "set_config" with the
// literal 'search_path', 'role' or 'session_authorization' is unseenSchema. A mention that changes nothing (a column named so, a string) only
// costs a look, or a split round trip. It does not allocate.
func unseenWrite(sql string) unseen {
	var u unseen
	read, write := false, false
	config, names := false, false // set_config, and a setting that changes what names refer to
	for i := range len(sql) {
		switch sql[i] {
		case 'n', 'N':
			if hasFoldAt(sql, i, "notify") {
				u |= unseenNotify
			}
		case 'r', 'R':
			read = read || hasWordAt(sql, i, "read")
		case 'w', 'W':
			write = write || hasWordAt(sql, i, "write")
		case 't', 'T':
			if hasFoldAt(sql, i, "transaction_read_only") {
				u |= unseenWritable
			}
		case 's', 'S':
			config = config || hasFoldAt(sql, i, "set_config")
		case '\'':
			// The setting's name as a literal, as SetLocal writes it: 'search_path' or 'role', not 'app.role'.
			names = names || hasFoldAt(sql, i, "'search_path'") || hasFoldAt(sql, i, "'role'") ||
				hasFoldAt(sql, i, "'session_authorization'")
		}
	}
	if read && write {
		u |= unseenWritable
	}
	if config && names {
		u |= unseenSchema // SetLocal("search_path", ...): later statements' names may refer to other tables
	}
	return u
}

// hasWordAt reports whether the lower-case word is at i as a whole word, ignoring ASCII case.
func hasWordAt(sql string, i int, word string) bool {
	j := i + len(word)
	return hasFoldAt(sql, i, word) && (i == 0 || !isWordByte(sql[i-1])) && (j == len(sql) || !isWordByte(sql[j]))
}

// hasFoldAt reports whether sql has the lower-case word at i, ignoring ASCII case.
func hasFoldAt(sql string, i int, word string) bool {
	return i+len(word) <= len(sql) && equalFoldASCII(sql[i:i+len(word)], word)
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
