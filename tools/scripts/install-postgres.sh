#!/usr/bin/env bash
# Installs PostgreSQL 15 (server binaries, pgbench) and psql from Debian when missing, without
# a default cluster listening on port 5432. Used by the test script and by `weft bench`.
set -euo pipefail
need_apt=()
command -v psql >/dev/null 2>&1 || need_apt+=(postgresql-client)
[ -x /usr/lib/postgresql/15/bin/postgres ] || need_apt+=(postgresql-15)
[ ${#need_apt[@]} -eq 0 ] && exit 0
echo "installing ${need_apt[*]}" >&2
if [ "$(id -u)" -eq 0 ]; then SUDO=""; else SUDO="sudo"; fi
$SUDO mkdir -p /etc/postgresql-common
grep -qs '^create_main_cluster' /etc/postgresql-common/createcluster.conf ||
  echo 'create_main_cluster = false' | $SUDO tee -a /etc/postgresql-common/createcluster.conf >/dev/null
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_apt[@]}" >/dev/null
