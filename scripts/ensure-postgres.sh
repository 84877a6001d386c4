#!/usr/bin/env bash
# Installs PostgreSQL (and pgbouncer, for the pooler tests) from the distribution's packages when they are missing.
# pgtest finds the server binaries itself (PATH, pg_config --bindir, /usr/lib/postgresql/*/bin).
set -euo pipefail

have_server() {
  command -v initdb >/dev/null 2>&1 && return 0
  ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1
}

missing=()
have_server || missing+=(postgresql)
command -v pgbouncer >/dev/null 2>&1 || [ -x /usr/sbin/pgbouncer ] || missing+=(pgbouncer)

if [ ${#missing[@]} -gt 0 ]; then
  echo "installing ${missing[*]} from the distribution's packages" >&2
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
fi
have_server || { echo "PostgreSQL server binaries still not found after install" >&2; exit 1; }
