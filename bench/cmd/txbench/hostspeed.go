package main

import (
	"context"
	"crypto/sha256"
	"fmt"
	"slices"
	"time"
)

// hostReading is how fast the host ran at one moment: the time a fixed amount of CPU work takes on one goroutine, and
// an empty query's round trip on a new direct connection to the server. txbench takes one before the measured cells
// and one after, and the report gives both.
//
// Why: this machine class drifts in speed by a fifth or more between runs minutes apart, with nothing else running
// and no steal time to show for it, and a drift need not slow every implementation alike (pgbench's C client and a
// Go client did not, on tpcb at 16 clients). Without a reading of its own, the only sign of a slow host is the
// benchmark's figures themselves, which is circular.
type hostReading struct {
	cpu time.Duration // median time of cpuWork over cpuSamples runs
	rtt time.Duration // median empty-query round trip (measureRTT), direct, without any -rtt delay
}

const (
	cpuSamples = 7
	cpuChunk   = 64 << 10 // bytes hashed per call
	cpuChunks  = 64       // calls per run: 4 MiB in all
)

// readHost takes a reading, connecting to the server with direct, the connection string without any delay.
func readHost(ctx context.Context, direct string) (hostReading, error) {
	rtt, err := measureRTT(ctx, direct, nil)
	if err != nil {
		return hostReading{}, err
	}
	buf := make([]byte, cpuChunk)
	for i := range buf {
		buf[i] = byte(i * 31)
	}
	took := make([]time.Duration, cpuSamples)
	for i := range took {
		took[i] = cpuWork(buf)
	}
	slices.Sort(took)
	return hostReading{cpu: took[len(took)/2], rtt: rtt}, nil
}

// cpuWork hashes buf cpuChunks times and returns how long that took. Each hash feeds the next, so that no call can
// be skipped.
func cpuWork(buf []byte) time.Duration {
	began := time.Now()
	var sum [sha256.Size]byte
	for range cpuChunks {
		copy(buf, sum[:])
		sum = sha256.Sum256(buf)
	}
	return time.Since(began)
}

// describeHost is the report's sentence for the readings before and after the cells.
func describeHost(before, after hostReading) string {
	return fmt.Sprintf("host speed (4 MiB of SHA-256 on one goroutine, and an empty query's round trip on a direct "+
		"connection; medians): %s and %s before, %s and %s after", ms(before.cpu), ms(before.rtt), ms(after.cpu),
		ms(after.rtt))
}
