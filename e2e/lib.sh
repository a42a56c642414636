# shellcheck shell=bash
# Shared process management for the e2e bring-up scripts (stack.sh, apiserver.sh). Source it
# after setting:
#   LOG_PREFIX    prefix of log/die lines, e.g. "stack" -> "[stack] ..."
#   BRINGUP       what failed, for fail_service: "<BRINGUP> failed (name); logs in ..."
#   POLL_SLEEP    seconds between readiness polls in wait_for
#   STOP_GRACE_MS  SIGTERM -> SIGKILL grace in stop_pidfiles
#   PORTS_GRACE_MS how long check_ports_closed waits for listeners to go
# and, before calling the functions, DIR (absolute work dir), RUN, LOGS, TIMEOUT (s, per
# readiness wait), SERVICES (port names, for pick_ports), MARKER (reset_workdir) and a function
# stop_services (called by fail_service).

log() { printf '[%s] %s\n' "$LOG_PREFIX" "$*" >&2; }
die() { printf '[%s] ERROR: %s\n' "$LOG_PREFIX" "$*" >&2; exit 1; }
now_ms() { date +%s%3N; }

# ---------------------------------------------------------------- processes
# Alive = /proc entry exists and state is not Z/X (pitfall 13: late reaping).
pid_alive() {
  local pid=$1 stat rest
  [[ $pid =~ ^[0-9]+$ ]] || return 1
  stat=$(cat "/proc/$pid/stat" 2>/dev/null) || return 1
  rest=${stat##*) }
  case ${rest%% *} in Z | X | x) return 1 ;; esac
  return 0
}

# Ours = its command line mentions this work dir.
pid_ours() {
  local pid=$1
  [[ -r /proc/$pid/cmdline ]] || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "$DIR/"
}

# A listener on 127.0.0.1:PORT? `ss` when available (no connection, so no "TLS handshake
# error" noise in the service logs), else a bash /dev/tcp connect.
if command -v ss >/dev/null 2>&1; then
  port_open() { [[ $1 =~ ^[0-9]+$ ]] && [[ -n $(ss -Hltn "sport = :$1" 2>/dev/null) ]]; }
else
  port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
fi

# The names of the PID files in $RUN (glob order).
pidfile_names() {
  local f
  for f in "$RUN"/*.pid; do
    [[ -e $f ]] && basename "$f" .pid
  done
  return 0
}

# stop_pidfiles [NAME...]: SIGTERM the live PIDs of $RUN/NAME.pid that are ours, in that
# order (no NAME: every PID file), SIGKILL what is still alive after $STOP_GRACE_MS, then remove
# all PID files.
stop_pidfiles() {
  local name pid pids=() names=() deadline
  [[ -d $RUN ]] || return 0
  names=("$@")
  ((${#names[@]})) || mapfile -t names < <(pidfile_names)
  for name in "${names[@]}"; do
    [[ -e $RUN/$name.pid ]] || continue
    pid=$(<"$RUN/$name.pid")
    if pid_alive "$pid" && pid_ours "$pid"; then
      kill -TERM "$pid" 2>/dev/null || true
      pids+=("$pid")
      log "stopping $name (pid $pid)"
    fi
  done
  deadline=$(($(now_ms) + STOP_GRACE_MS))
  for pid in "${pids[@]}"; do
    while pid_alive "$pid" && (($(now_ms) < deadline)); do sleep 0.02; done
    if pid_alive "$pid" && pid_ours "$pid"; then
      log "pid $pid ignored SIGTERM, sending SIGKILL"
      kill -KILL "$pid" 2>/dev/null || true
    fi
  done
  rm -f "$RUN"/*.pid
}

# Fails if any port recorded in $RUN/ports still has a listener after $PORTS_GRACE_MS.
check_ports_closed() {
  local name port left=0 deadline
  [[ -f $RUN/ports ]] || return 0
  deadline=$(($(now_ms) + PORTS_GRACE_MS))
  while read -r name port; do
    while port_open "$port" && (($(now_ms) < deadline)); do sleep 0.02; done
    if port_open "$port"; then
      log "port $port ($name) still has a listener"
      left=1
    fi
  done <"$RUN/ports"
  return $left
}

# reset_workdir WHAT PREVIOUS: stop what runs in an existing $DIR and wipe it (refused unless it
# is empty or holds $MARKER), then create $DIR, $RUN, $LOGS and the marker.
#   WHAT: "a stack dir"; PREVIOUS: "a previous stack" (used in the error messages)
reset_workdir() {
  if [[ -d $DIR ]]; then
    if [[ -n $(ls -A "$DIR") && ! -e $MARKER ]]; then
      die "$DIR exists, is not empty and is not $1 (no $MARKER); refusing to wipe it"
    fi
    stop_services
    check_ports_closed || die "$2 in $DIR left listeners behind"
    rm -rf "$DIR"
  fi
  mkdir -p "$DIR" "$RUN" "$LOGS"
  touch "$MARKER"
}

# status_rows WIDTH [NAME...]: one line per PID file (no NAME: every PID file in $RUN).
# Returns 0 when all run with their port open, 1 when one does not, 2 when there is no PID file.
status_rows() {
  local width=$1 name pid port state rc=0 any=0 names=()
  shift
  names=("$@")
  ((${#names[@]})) || mapfile -t names < <(pidfile_names)
  for name in "${names[@]}"; do
    [[ -e $RUN/$name.pid ]] || continue
    any=1
    pid=$(<"$RUN/$name.pid")
    port=$(awk -v n="$name" '$1==n{print $2}' "$RUN/ports" 2>/dev/null)
    if pid_alive "$pid" && pid_ours "$pid"; then
      if port_open "$port"; then state=running; else state="running (port closed)"; rc=1; fi
    else
      state=dead
      rc=1
    fi
    printf "%-${width}s pid %-8s 127.0.0.1:%-6s %s\n" "$name" "$pid" "$port" "$state"
  done
  ((any)) || return 2
  return $rc
}

# ---------------------------------------------------------------- ports
# NAME -> port for each of SERVICES; env override TRUSTGATE_PORT_<NAME upper, - -> _>.
# Writes "name port" lines to $RUN/ports.
declare -A PORT
pick_ports() {
  local free s var i=0
  # shellcheck disable=SC2207
  free=($(python3 - "${#SERVICES[@]}" <<'PY'
import socket, sys
socks = []
for _ in range(int(sys.argv[1])):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    socks.append(s)
print(" ".join(str(s.getsockname()[1]) for s in socks))
PY
))
  : >"$RUN/ports"
  for s in "${SERVICES[@]}"; do
    var=TRUSTGATE_PORT_$(tr 'a-z-' 'A-Z_' <<<"$s")
    PORT[$s]=${!var:-${free[$i]}}
    i=$((i + 1))
    if port_open "${PORT[$s]}"; then
      die "port ${PORT[$s]} for $s is already in use"
    fi
    echo "$s ${PORT[$s]}" >>"$RUN/ports"
  done
}

# ---------------------------------------------------------------- start + readiness
start() { # name cmd...
  local name=$1
  shift
  setsid "$@" </dev/null >"$LOGS/$name.log" 2>&1 &
  echo $! >"$RUN/$name.pid"
}

fail_service() { # name message
  log "$1: $2"
  log "---- tail of $LOGS/$1.log ----"
  tail -n 30 "$LOGS/$1.log" >&2 2>/dev/null || true
  log "----"
  stop_services
  die "$BRINGUP failed ($1); logs in $LOGS"
}

# wait_for name description cmd... : polls cmd every $POLL_SLEEP s until it succeeds; fails the
# service when its process exits or after $TIMEOUT s.
wait_for() {
  local name=$1 desc=$2
  shift 2
  local deadline=$(($(now_ms) + TIMEOUT * 1000)) pid
  pid=$(<"$RUN/$name.pid")
  until "$@"; do
    pid_alive "$pid" || fail_service "$name" "process exited while waiting for: $desc"
    (($(now_ms) < deadline)) || fail_service "$name" "not ready after ${TIMEOUT}s: $desc"
    sleep "$POLL_SLEEP"
  done
}

# is_code CODE curl-args... : the HTTP status equals CODE
is_code() {
  local want=$1
  shift
  [[ $(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "$@" 2>/dev/null) == "$want" ]]
}
