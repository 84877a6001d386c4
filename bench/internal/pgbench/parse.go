package pgbench

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Result is what one pgbench run reported.
type Result struct {
	Transactions int64           // "number of transactions actually processed"
	Failed       int64           // "number of failed transactions" (0 before PostgreSQL 15, which does not report it)
	TPS          float64         // without the initial connection time
	LatencyAvg   time.Duration   // "latency average"
	Latencies    []time.Duration // of each committed transaction, from the per-transaction log; sorted
}

var (
	processedRe = regexp.MustCompile(`(?m)^number of transactions actually processed: (\d+)`)
	failedRe    = regexp.MustCompile(`(?m)^number of failed transactions: (\d+)`)
	latencyRe   = regexp.MustCompile(`(?m)^latency average = ([0-9.]+) ms`)
	// PostgreSQL 14 and later print one tps, without the connection time; earlier versions print two, the second
	// "excluding connections establishing".
	tpsRe = regexp.MustCompile(`(?m)^tps = ([0-9.]+) \((?:without initial connection time|excluding connections establishing)\)`)
)

// Parse reads pgbench's summary from its standard output. It needs the processed transactions and the tps.
func Parse(out string) (Result, error) {
	var r Result
	var err error
	if r.Transactions, err = intField(processedRe, out); err != nil {
		return Result{}, err
	}
	if failedRe.MatchString(out) {
		if r.Failed, err = intField(failedRe, out); err != nil {
			return Result{}, err
		}
	}
	m := tpsRe.FindStringSubmatch(out)
	if m == nil {
		return Result{}, fmt.Errorf("pgbench: no tps in the output:\n%s", out)
	}
	if r.TPS, err = strconv.ParseFloat(m[1], 64); err != nil {
		return Result{}, fmt.Errorf("pgbench: tps %q: %w", m[1], err)
	}
	if m := latencyRe.FindStringSubmatch(out); m != nil {
		ms, err := strconv.ParseFloat(m[1], 64)
		if err != nil {
			return Result{}, fmt.Errorf("pgbench: latency %q: %w", m[1], err)
		}
		r.LatencyAvg = time.Duration(ms * float64(time.Millisecond))
	}
	return r, nil
}

func intField(re *regexp.Regexp, out string) (int64, error) {
	m := re.FindStringSubmatch(out)
	if m == nil {
		return 0, fmt.Errorf("pgbench: no %q in the output:\n%s", re.String(), out)
	}
	return strconv.ParseInt(m[1], 10, 64)
}

// readLogs collects the latencies of the per-transaction logs pgbench wrote into dir, one file per thread.
func readLogs(dir string) ([]time.Duration, error) {
	files, err := filepath.Glob(filepath.Join(dir, logPrefix+".*"))
	if err != nil {
		return nil, fmt.Errorf("pgbench: %w", err)
	}
	var all []time.Duration
	for _, name := range files {
		ls, err := readLog(name)
		if err != nil {
			return nil, err
		}
		all = append(all, ls...)
	}
	slices.Sort(all)
	return all, nil
}

// readLog reads one per-transaction log: "client_id transaction_no time script_no time_epoch time_us ...", where time
// is the transaction's latency in microseconds, or "failed" or "skipped".
func readLog(name string) ([]time.Duration, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, fmt.Errorf("pgbench: %w", err)
	}
	defer f.Close()
	var out []time.Duration
	s := bufio.NewScanner(f)
	for s.Scan() {
		fields := strings.Fields(s.Text())
		if len(fields) < 3 {
			continue
		}
		if us, err := strconv.ParseInt(fields[2], 10, 64); err == nil {
			out = append(out, time.Duration(us)*time.Microsecond)
		}
	}
	if err := s.Err(); err != nil {
		return nil, fmt.Errorf("pgbench: %s: %w", name, err)
	}
	return out, nil
}
