package tx

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestSavepointRollback(t *testing.T) {
	cases := map[string]bool{
		"ROLLBACK TO a":                       true,
		"rollback transaction to savepoint a": true,
		"ROLLBACK WORK TO a":                  true,
		"/* to */ ROLLBACK TO x":              true,
		`ROLLBACK TO "to"`:                    true,
		"ROLLBACK TO x;":                      true,
		"ROLLBACK TO x; -- done":              true,
		"SELECT 1; ROLLBACK TO x":             true,
		"ROLLBACK":                            false,
		"ABORT":                               false,
		"ROLLBACK -- back to how it was":      false,
		"ROLLBACK AND CHAIN /* back to a clean slate */": false,
		"ROLLBACK /* nested /* to */ still */ AND CHAIN": false,
		"SELECT 'to'; ROLLBACK":                          false,
		"ROLLBACK TO x; ROLLBACK":                        false,
		"SELECT $$ROLLBACK TO a$$":                       false,
		"SELECT $t$; ROLLBACK TO a $t$; ROLLBACK":        false,
	}
	for sql, want := range cases {
		t.Run(sql, func(t *testing.T) {
			require.Equal(t, want, savepointRollback(sql))
		})
	}
}
