package report

import (
	"cmp"
	"fmt"
	"path/filepath"
	"slices"
	"strconv"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"

	"github.com/pgxact/pgxact/bench/internal/harness"
)

// metric is one plotted quantity.
type metric struct {
	file  string // suffix of the SVG's name
	title string
	value func(harness.Result) float64
}

var metrics = []metric{
	{"commits", "commits/s", func(r harness.Result) float64 { return r.CommitsPerSec() }},
	{"attempts", "attempts per commit", func(r harness.Result) float64 { return r.AttemptsPerCommit() }},
	{"p99", "p99 latency (ms)", func(r harness.Result) float64 { return ms(r, 99) }},
}

// plotFile names the SVG of one workload and metric, relative to the output directory.
func plotFile(workload string, m metric) string { return workload + "-" + m.file + ".svg" }

// WritePlots writes, into dir, three SVG plots per workload (commits/s, attempts per commit and p99 latency against
// the number of workers, one line per implementation) and returns their file names.
func WritePlots(dir string, results []harness.Result) ([]string, error) {
	var files []string
	for _, w := range workloads(results) {
		rs := only(results, w)
		for _, m := range metrics {
			name := plotFile(w, m)
			if err := writePlot(filepath.Join(dir, name), w, m, rs); err != nil {
				return nil, err
			}
			files = append(files, name)
		}
	}
	return files, nil
}

// workerRange returns the smallest and largest worker count of rs.
func workerRange(rs []harness.Result) (lo, hi int) {
	for i, r := range rs {
		if i == 0 || r.Workers < lo {
			lo = r.Workers
		}
		hi = max(hi, r.Workers)
	}
	return lo, hi
}

func writePlot(path, workload string, m metric, rs []harness.Result) error {
	p := plot.New()
	p.Title.Text = workload + ": " + m.title
	p.X.Label.Text = "workers"
	p.Y.Label.Text = m.title
	p.Y.Min = 0
	p.X.Tick.Marker = workerTicks(rs)
	if lo, hi := workerRange(rs); lo < hi {
		// A log scale spreads 1..64 workers evenly. With a single worker count gonum would widen the range to
		// include 0, which a log scale cannot show: the axis stays linear then.
		p.X.Scale = plot.LogScale{}
	}
	p.Legend.Top = true
	var lines []any
	for _, im := range impls(rs) {
		lines = append(lines, im, linePoints(rs, im, m))
	}
	if err := plotutil.AddLinePoints(p, lines...); err != nil {
		return fmt.Errorf("report: plot %s: %w", path, err)
	}
	if err := p.Save(18*vg.Centimeter, 11*vg.Centimeter, path); err != nil {
		return fmt.Errorf("report: save %s: %w", path, err)
	}
	return nil
}

// linePoints returns im's points of metric m against the number of workers, in increasing order of workers: a line
// joins its points in order, and the results come in -workers order (4,1,2 would draw a zig-zag).
func linePoints(rs []harness.Result, im string, m metric) plotter.XYs {
	var xys plotter.XYs
	for _, r := range rs {
		if r.Impl == im {
			xys = append(xys, plotter.XY{X: float64(r.Workers), Y: m.value(r)})
		}
	}
	slices.SortStableFunc(xys, func(a, b plotter.XY) int { return cmp.Compare(a.X, b.X) })
	return xys
}

// workerTicks marks exactly the worker counts measured, which a log axis would otherwise label only by powers of 10.
func workerTicks(rs []harness.Result) plot.ConstantTicks {
	var ticks plot.ConstantTicks
	for _, n := range workerCounts(rs) {
		ticks = append(ticks, plot.Tick{Value: float64(n), Label: strconv.Itoa(n)})
	}
	return ticks
}

// workloads, impls and workerCounts list the distinct values in order of first appearance (workers sorted).
func workloads(rs []harness.Result) []string {
	return distinct(rs, func(r harness.Result) string { return r.Workload })
}

func impls(rs []harness.Result) []string {
	return distinct(rs, func(r harness.Result) string { return r.Impl })
}

func workerCounts(rs []harness.Result) []int {
	ns := distinct(rs, func(r harness.Result) int { return r.Workers })
	slices.Sort(ns)
	return ns
}

func distinct[K comparable](rs []harness.Result, key func(harness.Result) K) []K {
	var out []K
	for _, r := range rs {
		if k := key(r); !slices.Contains(out, k) {
			out = append(out, k)
		}
	}
	return out
}

func only(rs []harness.Result, workload string) []harness.Result {
	var out []harness.Result
	for _, r := range rs {
		if r.Workload == workload {
			out = append(out, r)
		}
	}
	return out
}
