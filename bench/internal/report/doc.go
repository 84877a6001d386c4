// Package report turns benchmark results into the forms txbench writes: JSON lines, a plain-text table for the
// terminal, SVG plots (one line per implementation against the number of workers) and a markdown report that embeds
// the plots and tabulates every figure.
package report
