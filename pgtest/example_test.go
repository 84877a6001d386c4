package pgtest_test

import (
	"testing"

	"github.com/pgxact/pgxact/pgtest"
)

// A test binary shares one throwaway server through TestMain; each test gets its own database.
func Example() {
	// In a _test.go file:
	//
	//	func TestMain(m *testing.M) { pgtest.Main(m) }
	testUsersTable := func(t *testing.T) {
		pool := pgtest.Pool(t) // a new, empty database; closed and dropped at t's cleanup
		if _, err := pool.Exec(t.Context(), "CREATE TABLE users (id bigint PRIMARY KEY)"); err != nil {
			t.Fatal(err)
		}
	}
	_ = testUsersTable
}
