package replica

import "errors"

// ErrInvalidToken is wrapped by the error Router.SessionFrom returns for a token that Session.Token did not produce.
var ErrInvalidToken = errors.New("replica: invalid session token")

// ErrInvalid is wrapped by the error New returns for a nil pool or an invalid option.
var ErrInvalid = errors.New("replica: invalid configuration")

// errNotStandby reports a replica pool whose server is not in recovery (pg_is_in_recovery() is false). It may have
// been promoted; either way it cannot say whether it has replayed a commit of the primary's.
var errNotStandby = errors.New("replica: server is not a standby")
