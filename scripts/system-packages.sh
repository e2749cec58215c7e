#!/usr/bin/env bash
# Debian packages the project needs beside .venv and node_modules, installed only when missing:
#   chromium        the browser the UI tests drive (Playwright uses it; it downloads no browser of its own)
#   libmariadb-dev  headers and pkg-config data that mysqlclient (Airflow's MySQL provider) builds against
#   pkg-config      how mysqlclient finds them
#   postgresql      the metadata database of the production-shaped stack (tests/deploy/test_production_stack.py)
#   redis-server    its Celery broker
set -euo pipefail
missing=()
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
pkg-config --exists mariadb 2>/dev/null || pkg-config --exists mysqlclient 2>/dev/null || missing+=(libmariadb-dev)
command -v pkg-config >/dev/null 2>&1 || missing+=(pkg-config)
# Debian keeps initdb/postgres under /usr/lib/postgresql/<version>/bin, off PATH.
compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null || command -v initdb >/dev/null 2>&1 || missing+=(postgresql)
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
[ ${#missing[@]} -eq 0 ] && exit 0
if ! command -v apt-get >/dev/null 2>&1; then
  echo "system-packages: please install ${missing[*]} (Debian/Ubuntu package names) and run make again" >&2
  exit 1
fi
sudo=()
[ "$(id -u)" -eq 0 ] || sudo=(sudo)
echo "system-packages: installing ${missing[*]}"
"${sudo[@]}" apt-get update -qq
DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
