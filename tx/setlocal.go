package tx

import (
	"regexp"
	"strings"
)

// settingName accepts PostgreSQL parameter names: a plain name (statement_timeout) or a dotted custom one
// (app.tenant_id), each part an identifier.
var settingName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_$]*(\.[A-Za-z_][A-Za-z0-9_$]*)*$`)

// SetLocal returns a Tx that sets the run-time parameter name to value until the transaction ends, like SET LOCAL,
// through set_config($1, $2, true): both travel as parameters, never as SQL text. The setting vanishes at COMMIT or
// ROLLBACK, so nothing leaks to the next user of a pooled connection. A name that is not a valid parameter name
// (identifiers, optionally dotted, at most 127 bytes) is invalid input.
func SetLocal(name, value string) Tx[struct{}] {
	if len(name) > 127 || !settingName.MatchString(name) {
		return Fail[struct{}](invalid("SetLocal parameter name %q", name))
	}
	// Settings that change what names refer to ("$user" in search_path is the role's) are named in the text, a
	// constant, so that a statement after this one in the same round trip is prepared after it has run (see
	// changesSchema).
	switch {
	case strings.EqualFold(name, "search_path"):
		return Then(Exec("SELECT set_config('search_path', $1, true)", value), Pure(struct{}{}))
	case strings.EqualFold(name, "role"):
		return Then(Exec("SELECT set_config('role', $1, true)", value), Pure(struct{}{}))
	case strings.EqualFold(name, "session_authorization"):
		return Then(Exec("SELECT set_config('session_authorization', $1, true)", value), Pure(struct{}{}))
	}
	return Then(Exec("SELECT set_config($1, $2, true)", name, value), Pure(struct{}{}))
}
