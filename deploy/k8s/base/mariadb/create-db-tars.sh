#!/bin/sh
# Creates db_tars and the registry's user on the MariaDB/MySQL server at DB_HOST:DB_PORT, as
# root (MYSQL_PWD = DB_ROOT_PASS). Idempotent: run it again after a password change. The
# registry creates and extends its tables itself; this only provides the database and the user.
# Passwords must not contain a single quote.
set -eu
echo "waiting for ${DB_HOST}:${DB_PORT}"
tries=0
until mariadb-admin --host="$DB_HOST" --port="$DB_PORT" --user=root --silent ping; do
  tries=$((tries + 1))
  if [ "$tries" -ge 150 ]; then
    echo "no database at ${DB_HOST}:${DB_PORT} after 5 minutes" >&2
    exit 1
  fi
  sleep 2
done
mariadb --host="$DB_HOST" --port="$DB_PORT" --user=root <<SQL
CREATE DATABASE IF NOT EXISTS db_tars DEFAULT CHARACTER SET utf8mb4 COLLATE utf8mb4_general_ci;
CREATE USER IF NOT EXISTS '${DB_USER}'@'%' IDENTIFIED BY '${DB_PASS}';
ALTER USER '${DB_USER}'@'%' IDENTIFIED BY '${DB_PASS}';
GRANT ALL PRIVILEGES ON db_tars.* TO '${DB_USER}'@'%';
FLUSH PRIVILEGES;
SQL
echo "db_tars and user ${DB_USER} ready on ${DB_HOST}:${DB_PORT}"
