package faultproxy_test

import (
	"fmt"

	"github.com/pgxact/pgxact/internal/faultproxy"
)

func ExampleIsCommit() {
	for _, sql := range []string{"COMMIT;", "begin; update t set n = n + 1; end", "select 'commit'", "rollback"} {
		fmt.Println(faultproxy.IsCommit(faultproxy.Message{Type: 'Q', SQL: sql}))
	}
	// Output:
	// true
	// true
	// false
	// false
}
