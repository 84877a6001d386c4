#!/usr/bin/env bash
# Installs PostgreSQL, pgbouncer (for the pooler tests) and pg_auto_failover (for pgtest's HA cluster) from the
# distribution's packages when they are missing, a C compiler, which go test -race needs (cgo), and gdb, which one
# test uses to stop a server backend mid-COMMIT.
# pgtest finds the server binaries itself (PATH, pg_config --bindir, /usr/lib/postgresql/*/bin).
set -euo pipefail

have_server() {
  command -v initdb >/dev/null 2>&1 && return 0
  ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1
}

# The pgautofailover extension is built per PostgreSQL major version, as postgresql-<major>-auto-failover.
have_auto_failover() {
  command -v pg_autoctl >/dev/null 2>&1 && ls /usr/lib/postgresql/*/lib/pgautofailover.so >/dev/null 2>&1
}

updated=""
install() {
  echo "installing $* from the distribution's packages" >&2
  local sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  [ -n "$updated" ] || { $sudo apt-get update -qq; updated=1; }
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

missing=()
cc=$(go env CC 2>/dev/null || true)
command -v "${cc:-gcc}" >/dev/null 2>&1 || missing+=(gcc libc6-dev)
have_server || missing+=(postgresql)
command -v pgbouncer >/dev/null 2>&1 || [ -x /usr/sbin/pgbouncer ] || missing+=(pgbouncer)
command -v gdb >/dev/null 2>&1 || missing+=(gdb) # tx's test of a COMMIT stalled inside the server
[ ${#missing[@]} -eq 0 ] || install "${missing[@]}"
have_server || { echo "PostgreSQL server binaries still not found after install" >&2; exit 1; }

if ! have_auto_failover; then
  major=$(ls -d /usr/lib/postgresql/*/bin/initdb 2>/dev/null | sed 's|/usr/lib/postgresql/\([^/]*\)/.*|\1|' | sort -V | tail -1 || true)
  [ -n "$major" ] || { echo "no Debian-packaged PostgreSQL to install pg_auto_failover for" >&2; exit 1; }
  install pg-auto-failover-cli "postgresql-${major}-auto-failover"
  have_auto_failover || { echo "pg_auto_failover still not found after install" >&2; exit 1; }
fi
