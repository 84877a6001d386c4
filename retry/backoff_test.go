package retry_test

import (
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/pgxact/pgxact/retry"
)

// schedule returns the first n delays of b, feeding each delay back as prev like a runner does.
func schedule(b retry.Backoff, n int) []time.Duration {
	var prev time.Duration
	delays := make([]time.Duration, 0, n)
	for i := 1; i <= n; i++ {
		prev = b.Delay(i, prev)
		delays = append(delays, prev)
	}
	return delays
}

func TestConstant(t *testing.T) {
	require.Equal(t, []time.Duration{5, 5, 5}, schedule(retry.Constant(5), 3))
	require.Equal(t, []time.Duration{0, 0}, schedule(retry.Constant(-5), 2), "a negative delay is clamped")
}

func TestExponentialDoublesUpToTheCap(t *testing.T) {
	ms := time.Millisecond
	got := schedule(retry.Exponential(ms, 100*ms), 9)
	require.Equal(t, []time.Duration{1 * ms, 2 * ms, 4 * ms, 8 * ms, 16 * ms, 32 * ms, 64 * ms, 100 * ms, 100 * ms}, got)
}

func TestExponentialDoesNotOverflow(t *testing.T) {
	tests := []struct {
		name      string
		base, max time.Duration
	}{
		{"1ms to 100ms", time.Millisecond, 100 * time.Millisecond},
		{"1ns to the largest duration", 1, math.MaxInt64},
		{"base equal to max", time.Second, time.Second},
		{"huge base", math.MaxInt64 / 3, math.MaxInt64},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := retry.Exponential(tt.base, tt.max)
			prev := time.Duration(0)
			for n := 1; n <= 300; n++ {
				d := b.Delay(n, 0)
				require.True(t, d >= prev && d <= tt.max, "n=%d: %v after %v", n, d, prev)
				prev = d
			}
			for _, n := range []int{64, 65, 200, 1 << 20, math.MaxInt} {
				require.Equal(t, tt.max, b.Delay(n, 0), "n=%d", n)
			}
			for _, n := range []int{0, -1, math.MinInt} {
				require.Equal(t, tt.base, b.Delay(n, 0), "n=%d is treated as the first failure", n)
			}
		})
	}
}

func TestExponentialAt200StaysAtTheCap(t *testing.T) {
	require.Equal(t, 100*time.Millisecond, retry.Exponential(time.Millisecond, 100*time.Millisecond).Delay(200, 0))
}

func TestSeededIsDeterministic(t *testing.T) {
	a, b, c := retry.Seeded(42), retry.Seeded(42), retry.Seeded(43)
	var sa, sb, sc []float64
	for range 100 {
		sa, sb, sc = append(sa, a()), append(sb, b()), append(sc, c())
	}
	require.Equal(t, sa, sb)
	require.NotEqual(t, sa, sc)
	for _, f := range sa {
		require.True(t, f >= 0 && f < 1, "%v is outside [0, 1)", f)
	}
}

func TestJitteredSchedulesAreDeterministicWithSeeded(t *testing.T) {
	ms := time.Millisecond
	exp := retry.Exponential(ms, 100*ms)
	backoffs := map[string]func(retry.Rand) retry.Backoff{
		"FullJitter":   func(r retry.Rand) retry.Backoff { return retry.FullJitter(exp, r) },
		"EqualJitter":  func(r retry.Rand) retry.Backoff { return retry.EqualJitter(exp, r) },
		"Decorrelated": func(r retry.Rand) retry.Backoff { return retry.Decorrelated(ms, 100*ms, r) },
	}
	for name, mk := range backoffs {
		t.Run(name, func(t *testing.T) {
			first := schedule(mk(retry.Seeded(1)), 30)
			require.Equal(t, first, schedule(mk(retry.Seeded(1)), 30))
			require.NotEqual(t, first, schedule(mk(retry.Seeded(2)), 30))
		})
	}
}

// TestFullJitterGoldenSchedule pins one schedule so that a change in Seeded or in the jitter arithmetic shows up.
func TestFullJitterGoldenSchedule(t *testing.T) {
	b := retry.FullJitter(retry.Exponential(time.Millisecond, 100*time.Millisecond), retry.Seeded(1))
	got := schedule(b, 8)
	want := []time.Duration{527460, 61496, 2733946, 1209100, 14621173, 5348481, 41243302, 65651942}
	require.Equal(t, want, got)
}

func TestJitterBounds(t *testing.T) {
	ms := time.Millisecond
	exp := retry.Exponential(ms, 100*ms)
	full, equal := retry.FullJitter(exp, retry.Seeded(3)), retry.EqualJitter(exp, retry.Seeded(3))
	for n := 1; n <= 200; n++ {
		d := exp.Delay(n, 0)
		t.Run(fmt.Sprintf("n=%d", n), func(t *testing.T) {
			f := full.Delay(n, 0)
			require.True(t, f >= 0 && f < d, "FullJitter %v outside [0, %v)", f, d)
			e := equal.Delay(n, 0)
			require.True(t, e >= d/2 && e < d, "EqualJitter %v outside [%v, %v)", e, d/2, d)
		})
	}
}

func TestDecorrelatedBounds(t *testing.T) {
	base, limit := time.Millisecond, time.Second
	b := retry.Decorrelated(base, limit, retry.Seeded(5))
	prev := time.Duration(0)
	for n := 1; n <= 200; n++ {
		d := b.Delay(n, prev)
		hi := min(3*max(prev, base), limit)
		require.True(t, d >= base && d <= hi, "n=%d: %v outside [%v, %v]", n, d, base, hi)
		prev = d
	}
	require.Equal(t, limit, retry.Decorrelated(base, limit, func() float64 { return 0.999 }).Delay(1, math.MaxInt64),
		"a huge prev does not overflow")
}

func TestCarelessRandIsClamped(t *testing.T) {
	exp := retry.Constant(time.Second)
	tests := map[string]float64{"negative": -1, "NaN": math.NaN(), "one": 1, "above one": 7, "+Inf": math.Inf(1)}
	for name, f := range tests {
		t.Run(name, func(t *testing.T) {
			r := func() float64 { return f }
			require.True(t, retry.FullJitter(exp, r).Delay(1, 0) < time.Second, "[0, d) stays half-open")
			require.True(t, retry.FullJitter(exp, r).Delay(1, 0) >= 0)
			require.True(t, retry.EqualJitter(exp, r).Delay(1, 0) < time.Second)
			d := retry.Decorrelated(time.Millisecond, time.Second, r).Delay(1, 0)
			require.True(t, d >= time.Millisecond && d <= time.Second, "%v", d)
		})
	}
}

func TestNilRandUsesTheGlobalSource(t *testing.T) {
	b := retry.FullJitter(retry.Constant(time.Hour), nil)
	seen := map[time.Duration]bool{}
	for range 20 {
		d := b.Delay(1, 0)
		require.True(t, d >= 0 && d < time.Hour)
		seen[d] = true
	}
	require.Greater(t, len(seen), 1, "twenty draws from an hour are not all equal")
}

// TestHugeDelaysDoNotWrapAround: a float64 of nanoseconds near math.MaxInt64 rounds up to 2^63, which a plain
// conversion to Duration makes negative. No backoff may ever return a negative delay, even with the largest caps.
func TestHugeDelaysDoNotWrapAround(t *testing.T) {
	one := func() float64 { return 1 }
	huge := retry.Exponential(time.Millisecond, math.MaxInt64)
	cases := map[string]func() time.Duration{
		"FullJitter of the largest cap":  func() time.Duration { return retry.FullJitter(huge, one).Delay(200, 0) },
		"EqualJitter of the largest cap": func() time.Duration { return retry.EqualJitter(huge, one).Delay(200, 0) },
		"Decorrelated with the largest cap": func() time.Duration {
			return retry.Decorrelated(time.Millisecond, math.MaxInt64, nil).Delay(1, math.MaxInt64/2)
		},
	}
	for name, delay := range cases {
		t.Run(name, func(t *testing.T) {
			for range 1000 {
				require.GreaterOrEqual(t, delay(), time.Duration(0))
			}
		})
	}
}
