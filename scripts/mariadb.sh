#!/usr/bin/env bash
# Print a MySQL URL (SQLAlchemy form) for the registry tests on stdout, getting a MariaDB by itself:
#   1. $K8STARS_TEST_MYSQL_URL, if set;
#   2. the local server on 127.0.0.1:3306 (root, empty password), started with start-stop-daemon
#      when it is installed but down;
#   3. a throw-away private instance: datadir $K8STARS_MARIADB_DIR (default /tmp/k8stars-mariadb),
#      port $K8STARS_MARIADB_PORT (default 3307), user k8stars/k8stars over TCP; mariadb-server
#      is installed with apt-get when missing. It never touches /var/lib/mysql.
# Idempotent and quiet; exits non-zero with a message on stderr when nothing works.
# Usage: scripts/mariadb.sh [--private | --stop]
#   --private  skip 1 and 2 (use or start the private instance)
#   --stop     stop the private instance (its data directory is kept)
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
dir="${K8STARS_MARIADB_DIR:-/tmp/k8stars-mariadb}"
port="${K8STARS_MARIADB_PORT:-3307}"
user=k8stars
password=k8stars
mode="${1:-}"

die() { echo "mariadb.sh: $*" >&2; exit 1; }

client() { command -v mariadb 2>/dev/null || command -v mysql 2>/dev/null || true; }

# can_login HOST PORT USER PASSWORD: a real login, not just an open port.
can_login() {
  local c
  c="$(client)"
  if [ -n "$c" ]; then
    MYSQL_PWD="$4" "$c" --no-defaults --connect-timeout=2 --protocol=TCP -h "$1" -P "$2" -u "$3" \
      -e 'SELECT 1' >/dev/null 2>&1
  elif [ -x "$root/.venv/bin/python" ]; then
    "$root/.venv/bin/python" - "$@" >/dev/null 2>&1 <<'PY'
import sys, pymysql
host, port, user, password = sys.argv[1:5]
pymysql.connect(host=host, port=int(port), user=user, password=password, connect_timeout=2).close()
PY
  else
    return 1
  fi
}

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

wait_for() {  # wait_for SECONDS COMMAND...
  local deadline=$((SECONDS + $1)); shift
  until "$@"; do
    [ "$SECONDS" -lt "$deadline" ] || return 1
    sleep 0.2
  done
}

find_bin() {  # find_bin NAME...: first found on PATH or in /usr/sbin, /usr/bin
  local name
  for name in "$@"; do
    command -v "$name" 2>/dev/null && return 0
    for d in /usr/sbin /usr/bin; do [ -x "$d/$name" ] && { echo "$d/$name"; return 0; }; done
  done
  return 1
}

socket_ok() {
  local c
  c="$(client)"
  [ -n "$c" ] && [ -S "$dir/mysqld.sock" ] &&
    "$c" --no-defaults -S "$dir/mysqld.sock" -uroot -e 'SELECT 1' >/dev/null 2>&1
}

stop_private() {
  if [ -f "$dir/mysqld.pid" ]; then
    local pid
    pid="$(cat "$dir/mysqld.pid")"
    kill "$pid" 2>/dev/null || true
    wait_for 30 bash -c "! kill -0 $pid 2>/dev/null" || die "mariadbd ($pid) did not stop"
  fi
}

private_url="mysql+pymysql://$user:$password@127.0.0.1:$port/db_tars"

case "$mode" in
  --stop) stop_private; exit 0 ;;
  --private|"") ;;
  *) die "usage: $0 [--private | --stop]" ;;
esac

if [ -z "$mode" ]; then
  # 1. configured
  if [ -n "${K8STARS_TEST_MYSQL_URL:-}" ]; then
    echo "$K8STARS_TEST_MYSQL_URL"
    exit 0
  fi
  # 2. the local server
  local_url="mysql+pymysql://root@127.0.0.1:3306/db_tars"
  if can_login 127.0.0.1 3306 root ""; then
    echo "$local_url"
    exit 0
  fi
  if ! port_open 3306 && [ -x /usr/sbin/mariadbd ] && [ "$(id -u)" = 0 ] &&
     command -v start-stop-daemon >/dev/null 2>&1; then
    install -d -o mysql -g mysql /run/mysqld 2>/dev/null || true
    start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd >/dev/null 2>&1 || true
    if wait_for 20 can_login 127.0.0.1 3306 root ""; then
      echo "$local_url"
      exit 0
    fi
  fi
fi

# 3. a private instance
if can_login 127.0.0.1 "$port" "$user" "$password"; then
  echo "$private_url"
  exit 0
fi
is_root=0
[ "$(id -u)" = 0 ] && is_root=1
if ! find_bin mariadbd mysqld >/dev/null; then
  [ "$is_root" = 1 ] || die "no MariaDB server installed and not root: install mariadb-server or set K8STARS_TEST_MYSQL_URL"
  command -v apt-get >/dev/null 2>&1 || die "no MariaDB server and no apt-get: set K8STARS_TEST_MYSQL_URL"
  log="$(mktemp)"
  if ! { apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q mariadb-server; } >"$log" 2>&1; then
    tail -n 20 "$log" >&2
    die "apt-get install mariadb-server failed"
  fi
  rm -f "$log"
fi
mariadbd="$(find_bin mariadbd mysqld)" || die "mariadbd not found after installation"
install_db="$(find_bin mariadb-install-db mysql_install_db)" || die "mariadb-install-db not found"
[ -n "$(client)" ] || die "no mariadb/mysql client found"
run_as=()
[ "$is_root" = 1 ] && run_as=(--user=mysql)

if ! socket_ok; then
  if port_open "$port"; then
    die "port $port is taken by something that is not our instance; set K8STARS_MARIADB_PORT"
  fi
  if [ ! -d "$dir/mysql" ]; then
    mkdir -p "$dir"
    [ "$is_root" = 1 ] && chown mysql:mysql "$dir"
    "$install_db" --no-defaults --datadir="$dir" "${run_as[@]}" \
      --auth-root-authentication-method=socket >"$dir.install.log" 2>&1 ||
      { tail -n 20 "$dir.install.log" >&2; die "mariadb-install-db failed (log: $dir.install.log)"; }
  fi
  rm -f "$dir/mysqld.sock"
  nohup "$mariadbd" --no-defaults --datadir="$dir" --port="$port" --bind-address=127.0.0.1 \
    --socket="$dir/mysqld.sock" --pid-file="$dir/mysqld.pid" --log-error="$dir/error.log" \
    --skip-name-resolve "${run_as[@]}" >/dev/null 2>&1 &
  wait_for 30 socket_ok ||
    { tail -n 20 "$dir/error.log" >&2 2>/dev/null; die "private mariadbd did not start (log: $dir/error.log)"; }
fi
"$(client)" --no-defaults -S "$dir/mysqld.sock" -uroot -e "
  CREATE USER IF NOT EXISTS '$user'@'127.0.0.1' IDENTIFIED BY '$password';
  GRANT ALL PRIVILEGES ON *.* TO '$user'@'127.0.0.1';
  CREATE USER IF NOT EXISTS '$user'@'localhost' IDENTIFIED BY '$password';
  GRANT ALL PRIVILEGES ON *.* TO '$user'@'localhost';" ||
  die "could not create user $user in the private instance"
can_login 127.0.0.1 "$port" "$user" "$password" || die "cannot log in to the private instance on port $port"
echo "$private_url"
