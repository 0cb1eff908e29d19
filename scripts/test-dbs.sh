#!/usr/bin/env bash
# Starts the database servers the store's MySQL and PostgreSQL tests run on
# (internal/store/mysql_test.go, postgres_test.go), on this machine:
#   - installs mariadb-server and postgresql with apt-get if missing,
#   - starts them if they are not running (no systemd needed: the init
#     scripts / pg_ctlcluster run the daemons directly),
#   - creates the test user kubesvc/kubesvc (MariaDB: may create databases
#     named kubesvc_test_*; PostgreSQL: role with CREATEDB),
#   - waits until both accept connections,
#   - prints on stdout, and only there, the lines
#       export KUBESVC_TEST_MYSQL_DSN=...
#       export KUBESVC_TEST_POSTGRES_DSN=...
#     so that callers can `eval "$(scripts/test-dbs.sh)"`.
# Everything else goes to stderr. Idempotent: safe to run again, also while
# the servers run or while another copy of this script runs (flock).
set -euo pipefail
# It installs packages and starts servers as their system users: root only.
if [[ $(id -u) -ne 0 ]]; then exec sudo "$0" "$@"; fi
exec 3>&1 1>&2 # stdout is for the export lines only

say() { echo "test-dbs: $*"; }
die() { echo "test-dbs: $*"; exit 1; }

logdir=/var/log/kubesvc-test-dbs
mkdir -p "$logdir"
exec 9>"$logdir/.lock"
flock -w 600 9 || die "another test-dbs.sh holds $logdir/.lock"

installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"; }
missing=()
for p in mariadb-server mariadb-client postgresql; do installed "$p" || missing+=("$p"); done
if ((${#missing[@]})); then
  say "installing ${missing[*]}"
  apt-get update -qq
  # Without systemd the packages' own start attempts may fail; they are
  # started below either way.
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" \
    >"$logdir/apt.log" 2>&1 || { tail -n 40 "$logdir/apt.log"; die "apt-get install failed (log: $logdir/apt.log)"; }
fi

# detached [--background] LOG CMD...: runs CMD in a session of its own,
# stdin /dev/null, output appended to LOG, and none of our other file
# descriptors: a daemon it starts must hold neither the caller's pipes (a
# caller reading our output would wait for it forever) nor our lock. With
# --background it does not wait for CMD (the subshell itself becomes CMD, so
# no copy of this script lingers holding them either).
detached() {
  local bg=false
  [[ $1 == --background ]] && { bg=true; shift; }
  local log=$1; shift
  if $bg; then
    (close_fds; exec setsid "$@" </dev/null >>"$log" 2>&1) &
  else
    (close_fds; exec setsid "$@" </dev/null >>"$log" 2>&1)
  fi
}
close_fds() {
  local fd
  for fd in /proc/"$BASHPID"/fd/*; do
    fd=${fd##*/}
    if ((fd > 2)); then eval "exec $fd>&-" 2>/dev/null || true; fi
  done
}

# wait_for DESCRIPTION SECONDS COMMAND...: retries COMMAND until it succeeds.
wait_for() {
  local what=$1 secs=$2; shift 2
  for ((i = 0; i < secs * 5; i++)); do
    if "$@" >/dev/null 2>&1; then return 0; fi
    sleep 0.2
  done
  return 1
}

# ---- MariaDB ----------------------------------------------------------------
mysql_socket=$(my_print_defaults --mysqld 2>/dev/null | sed -n 's/^--socket=//p' | tail -n 1)
mysql_socket=${mysql_socket:-/run/mysqld/mysqld.sock}
mysql_admin() { mariadb --protocol=socket --socket="$mysql_socket" -uroot "$@"; }
if ! mysql_admin -e 'SELECT 1' >/dev/null 2>&1; then
  say "starting MariaDB"
  if [[ ! -d /var/lib/mysql/mysql ]]; then
    mariadb-install-db --user=mysql --datadir=/var/lib/mysql >"$logdir/mariadb-install-db.log" 2>&1 ||
      { cat "$logdir/mariadb-install-db.log"; die "mariadb-install-db failed"; }
  fi
  install -d -o mysql -g mysql -m 0755 "$(dirname "$mysql_socket")"
  touch "$logdir/mariadb-error.log" && chown mysql:mysql "$logdir/mariadb-error.log"
  detached --background "$logdir/mariadb.log" mysqld_safe --user=mysql --skip-syslog --log-error="$logdir/mariadb-error.log"
  wait_for "MariaDB" 60 mysql_admin -e 'SELECT 1' ||
    { tail -n 30 "$logdir/mariadb.log" "$logdir/mariadb-error.log" 2>/dev/null || true; die "MariaDB did not start (logs: $logdir/)"; }
fi
mysql_admin <<'SQL'
CREATE USER IF NOT EXISTS 'kubesvc'@'localhost' IDENTIFIED BY 'kubesvc';
CREATE USER IF NOT EXISTS 'kubesvc'@'127.0.0.1' IDENTIFIED BY 'kubesvc';
GRANT ALL PRIVILEGES ON `kubesvc\_test\_%`.* TO 'kubesvc'@'localhost';
GRANT ALL PRIVILEGES ON `kubesvc\_test\_%`.* TO 'kubesvc'@'127.0.0.1';
SQL
mysql_dsn="kubesvc:kubesvc@unix($mysql_socket)/"
wait_for "MariaDB as kubesvc" 30 mariadb --protocol=socket --socket="$mysql_socket" -ukubesvc -pkubesvc -e 'SELECT 1' ||
  die "MariaDB does not accept the kubesvc user"
say "MariaDB $(mysql_admin -N -e 'SELECT VERSION()') ready on $mysql_socket"

# ---- PostgreSQL -------------------------------------------------------------
# pg_lsclusters: Ver Cluster Port Status Owner Data-directory Log-file
read -r pg_version pg_cluster pg_port pg_status _ < <(pg_lsclusters -h 2>/dev/null | sort -k1,1nr | head -n 1) || true
if [[ -z "${pg_version:-}" ]]; then
  pg_version=$(ls /usr/lib/postgresql | sort -n | tail -n 1)
  [[ -n "$pg_version" ]] || die "no PostgreSQL server version under /usr/lib/postgresql"
  say "creating PostgreSQL $pg_version cluster main"
  pg_createcluster "$pg_version" main >"$logdir/pg_createcluster.log" 2>&1 ||
    { cat "$logdir/pg_createcluster.log"; die "pg_createcluster failed"; }
  read -r pg_version pg_cluster pg_port pg_status _ < <(pg_lsclusters -h | awk -v v="$pg_version" '$1 == v && $2 == "main"')
fi
pg_admin() { runuser -u postgres -- psql -X -q -v ON_ERROR_STOP=1 -p "$pg_port" -d postgres "$@"; }
if [[ "$pg_status" != online* ]] || ! pg_admin -c 'SELECT 1' >/dev/null 2>&1; then
  say "starting PostgreSQL $pg_version/$pg_cluster"
  detached "$logdir/pg_ctlcluster.log" pg_ctlcluster "$pg_version" "$pg_cluster" start || true
  wait_for "PostgreSQL" 60 pg_admin -c 'SELECT 1' ||
    { cat "$logdir/pg_ctlcluster.log"; tail -n 30 "/var/log/postgresql/postgresql-$pg_version-$pg_cluster.log" 2>/dev/null || true
      die "PostgreSQL $pg_version/$pg_cluster did not start"; }
fi
pg_admin <<'SQL'
DO $$
BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'kubesvc') THEN
    CREATE ROLE kubesvc LOGIN CREATEDB PASSWORD 'kubesvc';
  ELSE
    ALTER ROLE kubesvc LOGIN CREATEDB PASSWORD 'kubesvc';
  END IF;
END
$$;
-- Tests drop their databases WITH (FORCE), which ends every session on
-- them, autovacuum's included: that takes pg_signal_backend.
GRANT pg_signal_backend TO kubesvc;
SQL
pg_dsn="postgres://kubesvc:kubesvc@127.0.0.1:$pg_port/postgres?sslmode=disable"
wait_for "PostgreSQL as kubesvc" 30 env PGPASSWORD=kubesvc psql -X -h 127.0.0.1 -p "$pg_port" -U kubesvc -d postgres -c 'SELECT 1' ||
  die "PostgreSQL does not accept the kubesvc role over TCP on 127.0.0.1:$pg_port (pg_hba.conf?)"
say "PostgreSQL $pg_version ready on 127.0.0.1:$pg_port"

printf 'export KUBESVC_TEST_MYSQL_DSN=%q\n' "$mysql_dsn" >&3
printf 'export KUBESVC_TEST_POSTGRES_DSN=%q\n' "$pg_dsn" >&3
