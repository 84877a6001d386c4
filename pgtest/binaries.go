package pgtest

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

// findBinDir returns the directory holding initdb and pg_ctl. Both must come from the same directory so the
// cluster is initialised and run by one PostgreSQL version.
func findBinDir() (string, error) {
	for _, dir := range binDirCandidates() {
		if isBinDir(dir) {
			return dir, nil
		}
	}
	return "", ErrNoPostgres
}

// binDirCandidates lists directories in order of preference: PATH, pg_config --bindir, then the Debian
// layout /usr/lib/postgresql/<version>/bin, highest version first.
func binDirCandidates() []string {
	var dirs []string
	if path, err := exec.LookPath("initdb"); err == nil {
		if resolved, err := filepath.EvalSymlinks(path); err == nil {
			dirs = append(dirs, filepath.Dir(resolved))
		}
		dirs = append(dirs, filepath.Dir(path))
	}
	if dir := pgConfigBinDir(); dir != "" {
		dirs = append(dirs, dir)
	}
	return append(dirs, debianBinDirs()...)
}

func pgConfigBinDir() string {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "pg_config", "--bindir").Output()
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(out))
}

func debianBinDirs() []string {
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	slices.SortFunc(dirs, func(a, b string) int { return debianVersion(b) - debianVersion(a) })
	return dirs
}

// debianVersion extracts the major version from /usr/lib/postgresql/<version>/bin; unparsable versions
// sort last.
func debianVersion(dir string) int {
	v, err := strconv.ParseFloat(filepath.Base(filepath.Dir(dir)), 64)
	if err != nil {
		return -1
	}
	return int(v * 100)
}

func isBinDir(dir string) bool {
	return isExecutable(filepath.Join(dir, "initdb")) && isExecutable(filepath.Join(dir, "pg_ctl"))
}

func isExecutable(path string) bool {
	info, err := os.Stat(path)
	return err == nil && !info.IsDir() && info.Mode()&0o111 != 0
}

// binary returns the path of a PostgreSQL program in dir, or an error naming what to install.
func binary(dir, name string) (string, error) {
	path := filepath.Join(dir, name)
	if !isExecutable(path) {
		return "", fmt.Errorf("%w: %s missing from %s", ErrNoPostgres, name, dir)
	}
	return path, nil
}
