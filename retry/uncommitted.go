package retry

import "errors"

// Uncommitted marks err as having happened when the transaction certainly did not commit: the runner knows COMMIT
// was not sent, or pg_xact_status reported the transaction aborted. Classify then treats a connection error in err as
// ConnectionLost. The returned error wraps err: Error returns err's text unchanged, and errors.Is, errors.As and
// errors.Unwrap see err. Uncommitted(nil) is nil.
func Uncommitted(err error) error {
	if err == nil {
		return nil
	}
	return &uncommittedError{err: err}
}

type uncommittedError struct{ err error }

func (e *uncommittedError) Error() string { return e.err.Error() }
func (e *uncommittedError) Unwrap() error { return e.err }

func isUncommitted(err error) bool {
	var u *uncommittedError
	return errors.As(err, &u)
}
