package report

import (
	"encoding/json"
	"io"
	"math"

	"github.com/pgxact/pgxact/bench/internal/harness"
)

// Record is the JSON form of one result: one object per (workload, impl, workers), with exactly these fields.
// attempts_per_commit, p50_ms and p99_ms are 0 when nothing committed.
type Record struct {
	Workload          string  `json:"workload"`
	Impl              string  `json:"impl"`
	Workers           int     `json:"workers"`
	Seconds           float64 `json:"seconds"`
	Commits           int64   `json:"commits"`
	CommitsPerSec     float64 `json:"commits_per_sec"`
	Attempts          int64   `json:"attempts"`
	AttemptsPerCommit float64 `json:"attempts_per_commit"`
	P50Ms             float64 `json:"p50_ms"`
	P99Ms             float64 `json:"p99_ms"`
	Errors            int64   `json:"errors"`
	InvariantOK       bool    `json:"invariant_ok"`
}

// NewRecord summarises r.
func NewRecord(r harness.Result) Record {
	return Record{
		Workload:          r.Workload,
		Impl:              r.Impl,
		Workers:           r.Workers,
		Seconds:           round(r.Elapsed.Seconds(), 3),
		Commits:           r.Commits,
		CommitsPerSec:     round(r.CommitsPerSec(), 1),
		Attempts:          r.Attempts,
		AttemptsPerCommit: round(r.AttemptsPerCommit(), 3),
		P50Ms:             round(ms(r, 50), 3),
		P99Ms:             round(ms(r, 99), 3),
		Errors:            r.Errors,
		InvariantOK:       r.InvariantOK,
	}
}

func ms(r harness.Result, p float64) float64 { return float64(r.Percentile(p).Microseconds()) / 1000 }

func round(f float64, digits int) float64 {
	scale := math.Pow10(digits)
	return math.Round(f*scale) / scale
}

// WriteJSON writes one JSON object per result, one per line.
func WriteJSON(w io.Writer, results []harness.Result) error {
	enc := json.NewEncoder(w)
	for _, r := range results {
		if err := enc.Encode(NewRecord(r)); err != nil {
			return err
		}
	}
	return nil
}
