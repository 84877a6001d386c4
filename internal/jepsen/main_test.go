package jepsen_test

import (
	"flag"
	"os"
	"testing"
	"time"

	"github.com/pgxact/pgxact/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// long switches the suite to its long scale (at least a million transactions); PGXACT_LONG=1 does the same.
var long = flag.Bool("long", false, "run the reliability suite at long scale (>= 1e6 transactions; use -timeout 0)")

// scale sizes the suite's load tests. Every loop is bounded by a count and by limit.
type scale struct {
	name        string
	workers     int           // concurrent clients in the fault runs (more than the pool's connections)
	bankOps     int           // bank transfers and reads under faults
	listOps     int           // list-append transactions at SERIALIZABLE under faults
	controlOps  int           // upper bound for each negative control, which stops at its first anomaly
	rlsOps      int           // row-level security transactions
	kills, cuts int           // fault bounds
	limit       time.Duration // time bound of each load phase
}

func suiteScale() scale {
	if *long || os.Getenv("PGXACT_LONG") == "1" {
		return scale{name: "long", workers: 64, bankOps: 500_000, listOps: 300_000, controlOps: 20_000,
			rlsOps: 200_000, kills: 20_000, cuts: 50_000, limit: 3 * time.Hour}
	}
	return scale{name: "ci", workers: 64, bankOps: 12_000, listOps: 8_000, controlOps: 4_000,
		rlsOps: 10_000, kills: 150, cuts: 400, limit: 100 * time.Second}
}
