#!/usr/bin/env bash
# Compares clusweb with nginx on the same machine, alternating the two so that
# drift in the machine's speed affects both alike.
#
# Cases:
#   static  GET of a 1 KiB file, keep-alive       wrk -t1 -c50 --latency
#   proxy   GET /app/x proxied over keep-alive to bench_responder on a unix socket
#
# Both servers get one serving thread (nginx: worker_processes 1; clusweb:
# threads: 1) pinned to CPU 0; wrk and the upstream responders run on CPU 1.
# Traffic goes to 127.0.0.1 and unix sockets only.
#
# Environment:
#   DURATION=10   seconds per measured run
#   ROUNDS=5      rounds per case; each round measures both servers
#   WARMUP=2      seconds of unrecorded load per server per case
#   THREADS=1     2 = both servers with 2 serving threads, nothing pinned (for
#                 information only; such results are labelled and are not the
#                 pinned comparison)
#   ONLY=         nginx or clusweb: run one server alone (no ratios)
#   CASES="static proxy"  the cases to run, in this order
#   BUILD=1       0 = use the binaries already in build/release
#   CLUSWEB=      path of another clusweb binary to measure (default: the
#                 release build)
#
# Run as root (nginx and clusweb drop to nobody) on Linux with 2 or more CPUs.
set -euo pipefail

DURATION=${DURATION:-10}
ROUNDS=${ROUNDS:-5}
WARMUP=${WARMUP:-2}
THREADS=${THREADS:-1}
ONLY=${ONLY:-}
BUILD=${BUILD:-1}
CASES=${CASES:-static proxy}

readonly connections=50
readonly ready_timeout_s=30
readonly stop_timeout_s=5
readonly proxy_body='hello from upstream'

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
clusweb_bin=${CLUSWEB:-$repo/build/release/app/clusweb/clusweb}
responder_bin=$repo/build/release/bench/bench_responder
nginx_bin=/usr/sbin/nginx

fail() {
  echo "http_vs_nginx: $*" >&2
  exit 1
}

is_count() { [[ $1 =~ ^[1-9][0-9]*$ ]]; }
is_count "$DURATION" || fail "DURATION must be a positive integer, got '$DURATION'"
is_count "$ROUNDS" || fail "ROUNDS must be a positive integer, got '$ROUNDS'"
is_count "$WARMUP" || fail "WARMUP must be a positive integer, got '$WARMUP'"
[[ $THREADS == 1 || $THREADS == 2 ]] || fail "THREADS must be 1 or 2, got '$THREADS'"
[[ -z $ONLY || $ONLY == nginx || $ONLY == clusweb ]] ||
  fail "ONLY must be nginx or clusweb, got '$ONLY'"
[[ $BUILD == 0 || $BUILD == 1 ]] || fail "BUILD must be 0 or 1, got '$BUILD'"
read -r -a cases <<<"$CASES"
((${#cases[@]} > 0)) || fail "CASES names no case"
for case in "${cases[@]}"; do
  [[ $case == static || $case == proxy ]] || fail "CASES: unknown case '$case' (static, proxy)"
done
[[ $(id -u) == 0 ]] || fail "run as root (both servers start as root and drop to nobody)"
for tool in wrk taskset curl python3 ps; do
  command -v "$tool" >/dev/null || fail "$tool not found (scripts/install-deps.sh installs it)"
done
[[ $ONLY == clusweb || -x $nginx_bin ]] || fail "$nginx_bin not found (package nginx-light)"

pinned=0
label=""
if [[ $THREADS == 1 ]]; then
  pinned=1
  if ! taskset -c 0 true 2>/dev/null || ! taskset -c 1 true 2>/dev/null; then
    fail "pinning needs CPUs 0 and 1 (THREADS=2 runs unpinned)"
  fi
  server_pin=(taskset -c 0)
  client_pin=(taskset -c 1)
else
  label="[threads=2 unpinned, information only] "
  server_pin=()
  client_pin=()
fi

run_nginx=1
run_clusweb=1
[[ $ONLY == clusweb ]] && run_nginx=0
[[ $ONLY == nginx ]] && run_clusweb=0

# ---------------------------------------------------------------------------
# Processes we start, and how they are stopped.

tmp=""
nginx_pid=""
clusweb_pid=""
responder_pid=""
# "pid:starttime" of each server's descendants seen while it ran (filled and
# read through namerefs in remember_family and stop_tree).
# shellcheck disable=SC2034
clusweb_family=()
# shellcheck disable=SC2034
nginx_family=()

# Field 22 of /proc/PID/stat (start time): with the pid it names one process,
# so a pid reused after exit is never signalled.
start_time() {
  local stat
  stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
  stat=${stat##*) }
  # shellcheck disable=SC2086
  set -- $stat
  echo "${20}"
}

# True while PID runs and is not a zombie (orphans are reaped late here).
running() {
  local stat
  stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
  stat=${stat##*) }
  [[ ${stat:0:1} != Z ]]
}

descendants() {
  ps -e -o pid=,ppid= | awk -v root="$1" '
    { parent[$1] = $2 }
    END {
      for (p in parent) {
        q = p
        while (q in parent && q != root && q > 1) q = parent[q]
        if (q == root && p != root) print p
      }
    }'
}

# Adds "pid:starttime" of every current descendant of $1 to array $2.
remember_family() {
  local root=$1 pid st
  local -n family=$2
  for pid in $(descendants "$root"); do
    st=$(start_time "$pid") || continue
    [[ " ${family[*]} " == *" $pid:$st "* ]] || family+=("$pid:$st")
  done
}

# Sends SIGTERM to $1, waits up to stop_timeout_s for it to exit, then SIGKILLs
# it and every remembered descendant (array $2) that is still the same process.
stop_tree() {
  local pid=$1 entry member st
  local -n members=$2
  [[ -n $pid ]] || return 0
  kill -TERM "$pid" 2>/dev/null || true
  local deadline=$((SECONDS + stop_timeout_s))
  while running "$pid" && ((SECONDS < deadline)); do sleep 0.1; done
  if running "$pid"; then
    echo "http_vs_nginx: pid $pid ignored SIGTERM for ${stop_timeout_s}s, killing" >&2
    kill -KILL "$pid" 2>/dev/null || true
  fi
  # Give descendants the rest of the grace period to follow their parent.
  for entry in "${members[@]}"; do
    member=${entry%%:*}
    while running "$member" && ((SECONDS < deadline)); do sleep 0.1; done
    st=$(start_time "$member") || continue
    if [[ $st == "${entry#*:}" ]] && running "$member"; then
      kill -KILL "$member" 2>/dev/null || true
    fi
  done
  wait "$pid" 2>/dev/null || true
}

show_logs() {
  local log
  for log in "$tmp"/nginx/error.log "$tmp"/clusweb.log "$tmp"/responder.log "$tmp"/build.log; do
    [[ -s $log ]] || continue
    echo "---- last lines of ${log#"$tmp"/} ----" >&2
    tail -n 30 "$log" >&2
  done
}

cleanup() {
  local status=$?
  set +e
  trap '' INT TERM
  trap - EXIT
  [[ $status != 0 && -n $tmp ]] && show_logs
  if [[ -n $clusweb_pid ]]; then
    remember_family "$clusweb_pid" clusweb_family
    stop_tree "$clusweb_pid" clusweb_family
  fi
  if [[ -n $nginx_pid ]]; then
    remember_family "$nginx_pid" nginx_family
    stop_tree "$nginx_pid" nginx_family
  fi
  # shellcheck disable=SC2034
  local none=()
  [[ -n $responder_pid ]] && stop_tree "$responder_pid" none
  [[ -n $tmp ]] && rm -rf -- "$tmp"
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---------------------------------------------------------------------------
# Build and set up.

tmp=$(mktemp -d /tmp/clusweb-bench.XXXXXX)
chmod 0755 "$tmp"  # the servers read the static files as nobody

if [[ $BUILD == 1 ]]; then
  echo "building release (cmake --preset release) ..."
  build_target=()
  [[ $ONLY == nginx ]] && build_target=(--target bench_responder)
  (cd "$repo" && cmake --preset release && cmake --build --preset release "${build_target[@]}") \
    >"$tmp/build.log" 2>&1 || fail "release build failed"
fi
[[ -x $responder_bin ]] || fail "$responder_bin missing (build the release preset)"
((run_clusweb == 0)) || [[ -x $clusweb_bin ]] || fail "$clusweb_bin missing (build the release preset)"

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
nginx_port=$(free_port)
clusweb_port=$(free_port)
while [[ $clusweb_port == "$nginx_port" ]]; do clusweb_port=$(free_port); done

mkdir -p "$tmp/static" "$tmp/nginx/temp" "$tmp/run" "$tmp/state"
awk 'BEGIN { for (i = 0; i < 1023; i++) printf "%c", 97 + i % 26; printf "\n" }' \
  >"$tmp/static/1k.txt"
chmod 0755 "$tmp/static"
chmod 0644 "$tmp/static/1k.txt"
[[ $(stat -c %s "$tmp/static/1k.txt") == 1024 ]] || fail "static file is not 1024 bytes"
printf '%s\n' "$proxy_body" >"$tmp/expected-proxy-body"

declare -A url
url[nginx,static]=http://127.0.0.1:$nginx_port/1k.txt
url[nginx,proxy]=http://127.0.0.1:$nginx_port/app/x
url[clusweb,static]=http://127.0.0.1:$clusweb_port/1k.txt
url[clusweb,proxy]=http://127.0.0.1:$clusweb_port/app/x

# Waits until URL answers 200 with the body in file $2, or fails after
# ready_timeout_s (or at once when process $3 has died). Meanwhile records the
# descendants of $3 in array $5, so that cleanup finds them even if $3 dies.
wait_ready() {
  local target=$1 expected=$2 pid=$3 name=$4 family_name=$5 code=""
  local deadline=$((SECONDS + ready_timeout_s))
  while ((SECONDS < deadline)); do
    remember_family "$pid" "$family_name"
    running "$pid" || fail "$name exited before answering $target"
    code=$(curl -s --max-time 2 -o "$tmp/ready-body" -w '%{http_code}' "$target" || true)
    if [[ $code == 200 ]]; then
      cmp -s "$tmp/ready-body" "$expected" ||
        fail "$name answered $target with an unexpected body"
      return 0
    fi
    sleep 0.2
  done
  fail "$name did not answer 200 on $target within ${ready_timeout_s}s (last status '$code')"
}

affinity() { taskset -pc "$1" 2>/dev/null | awk -F': ' '{ print $2 }'; }

# Fails unless every pid in "$@" (after $1 = expected CPU list, $2 = what) is
# pinned to that list. Only checked in pinned mode.
expect_affinity() {
  local cpus=$1 what=$2 pid actual
  shift 2
  ((pinned == 1)) || return 0
  for pid in "$@"; do
    actual=$(affinity "$pid")
    [[ $actual == "$cpus" ]] ||
      fail "$what pid $pid runs on CPUs '$actual', expected '$cpus': the comparison would be unfair"
  done
}

comm_of() { cat "/proc/$1/comm" 2>/dev/null || echo "?"; }

describe_family() {
  local pid out=""
  for pid in "$@"; do out+=" $pid($(comm_of "$pid"))=cpu$(affinity "$pid")"; done
  echo "${out# }"
}

# ---------------------------------------------------------------------------
# nginx and its upstream.

if ((run_nginx)); then
  responder_socket=$tmp/upstream.sock
  "${client_pin[@]}" "$responder_bin" --unix "$responder_socket" >"$tmp/responder.log" 2>&1 &
  responder_pid=$!
  for _ in $(seq 50); do [[ -S $responder_socket ]] && break; sleep 0.1; done
  [[ -S $responder_socket ]] || fail "bench_responder did not create $responder_socket"

  cat >"$tmp/nginx/nginx.conf" <<EOF
# Generated by bench/http_vs_nginx.sh for one run.
user nobody nogroup;
worker_processes $THREADS;
pid $tmp/nginx/nginx.pid;
error_log $tmp/nginx/error.log warn;

events {
    worker_connections 4096;
}

http {
    include /etc/nginx/mime.types;
    default_type application/octet-stream;
    access_log off;

    client_body_temp_path $tmp/nginx/temp/client_body;
    proxy_temp_path $tmp/nginx/temp/proxy;
    fastcgi_temp_path $tmp/nginx/temp/fastcgi;
    uwsgi_temp_path $tmp/nginx/temp/uwsgi;
    scgi_temp_path $tmp/nginx/temp/scgi;

    sendfile on;
    tcp_nopush on;
    keepalive_requests 1000000;
    open_file_cache max=1000 inactive=60s;
    open_file_cache_valid 60s;

    upstream upstream_pool {
        server unix:$responder_socket;
        keepalive 64;
    }

    server {
        listen 127.0.0.1:$nginx_port;

        location / {
            root $tmp/static;
        }

        location /app/ {
            proxy_pass http://upstream_pool;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header X-Forwarded-For \$remote_addr;
            proxy_set_header X-Forwarded-Proto \$scheme;
            proxy_set_header X-Forwarded-Host \$host;
        }
    }
}
EOF
  "$nginx_bin" -t -q -c "$tmp/nginx/nginx.conf" -p "$tmp/nginx" -g 'daemon off;' \
    >"$tmp/nginx/check.log" 2>&1 || { cat "$tmp/nginx/check.log" >&2; fail "nginx -t failed"; }
  "${server_pin[@]}" "$nginx_bin" -c "$tmp/nginx/nginx.conf" -p "$tmp/nginx" -g 'daemon off;' \
    >>"$tmp/nginx/error.log" 2>&1 &
  nginx_pid=$!
  wait_ready "${url[nginx,static]}" "$tmp/static/1k.txt" "$nginx_pid" nginx nginx_family
  wait_ready "${url[nginx,proxy]}" "$tmp/expected-proxy-body" "$nginx_pid" nginx nginx_family
  remember_family "$nginx_pid" nginx_family
  mapfile -t nginx_workers < <(descendants "$nginx_pid")
  expect_affinity 0 "nginx" "$nginx_pid" "${nginx_workers[@]}"
  expect_affinity 1 "nginx's bench_responder" "$responder_pid"
fi

# ---------------------------------------------------------------------------
# clusweb, whose pool starts its own bench_responder by socket activation.

if ((run_clusweb)); then
  if ((pinned)); then
    # clusweb's children inherit CPU 0 from the master; taskset re-pins the
    # upstream to CPU 1 (as nginx's upstream is) and execs it with the same pid,
    # so LISTEN_PID still matches.
    pool_command="[\"$(command -v taskset)\", \"-c\", \"1\", \"$responder_bin\"]"
  else
    pool_command="[\"$responder_bin\"]"
  fi
  cat >"$tmp/clusweb.yaml" <<EOF
# Generated by bench/http_vs_nginx.sh for one run.
kind: WebServer
threads: $THREADS
user: nobody
---
kind: Site
name: bench
physicalPath: "$tmp/static"
bindings: ["http://127.0.0.1:$clusweb_port"]
applications:
  - path: /app
    pool: upstream
---
kind: ApplicationPool
name: upstream
command: $pool_command
processes: 1
socket: activation
EOF
  "$clusweb_bin" web --check -f "$tmp/clusweb.yaml" >"$tmp/clusweb-check.log" 2>&1 ||
    { cat "$tmp/clusweb-check.log" >&2; fail "clusweb web --check rejected the manifest"; }
  "${server_pin[@]}" "$clusweb_bin" web -f "$tmp/clusweb.yaml" \
    --run-dir "$tmp/run" --state-dir "$tmp/state" >"$tmp/clusweb.log" 2>&1 &
  clusweb_pid=$!
  wait_ready "${url[clusweb,static]}" "$tmp/static/1k.txt" "$clusweb_pid" clusweb clusweb_family
  wait_ready "${url[clusweb,proxy]}" "$tmp/expected-proxy-body" "$clusweb_pid" clusweb clusweb_family
  remember_family "$clusweb_pid" clusweb_family
  clusweb_front=()
  clusweb_upstream=()
  for pid in $(descendants "$clusweb_pid"); do
    if [[ $(comm_of "$pid") == bench_responder ]]; then
      clusweb_upstream+=("$pid")
    else
      clusweb_front+=("$pid")
    fi
  done
  ((${#clusweb_upstream[@]} > 0)) || fail "no bench_responder found under clusweb pid $clusweb_pid"
  expect_affinity 0 "clusweb" "$clusweb_pid" "${clusweb_front[@]}"
  expect_affinity 1 "clusweb's bench_responder" "${clusweb_upstream[@]}"
fi

# ---------------------------------------------------------------------------
# Measuring.

# Runs wrk against $2 for $3 seconds, output in file $1; fails on any error.
run_wrk() {
  local out=$1 target=$2 seconds=$3
  "${client_pin[@]}" wrk -t1 -c"$connections" -d"${seconds}s" --latency "$target" >"$out" 2>&1 ||
    { cat "$out" >&2; fail "wrk failed against $target"; }
}

# Prints "requests_per_second p99_ms errors requests" from wrk --latency output.
parse_wrk() {
  awk '
    function to_ms(v,   unit, n) {
      if (!match(v, /[a-z]+$/)) return ""
      unit = substr(v, RSTART); n = substr(v, 1, RSTART - 1) + 0
      if (unit == "us") return n / 1000
      if (unit == "ms") return n
      if (unit == "s") return n * 1000
      if (unit == "m") return n * 60000
      if (unit == "h") return n * 3600000
      return ""
    }
    /^Requests\/sec:/ { rps = $2 }
    /^ +99%/ { p99 = to_ms($2) }
    / requests in / { requests = $1 }
    /Non-2xx or 3xx responses:/ { errors += $NF }
    /Socket errors:/ {
      for (i = 1; i <= NF; i++) { f = $i; sub(/,$/, "", f); if (f ~ /^[0-9]+$/) errors += f }
    }
    END {
      if (rps == "" || p99 == "" || requests == "") exit 1
      printf "%s %s %d %s\n", rps, p99, errors, requests
    }' "$1"
}

# Measures server $1 on case $2 for $3 seconds into measured_rps and
# measured_p99 (ms); fails on any error answer.
measure() {
  local server=$1 case=$2 seconds=$3 out parsed errors requests
  out=$tmp/wrk-$server-$case.txt
  run_wrk "$out" "${url[$server,$case]}" "$seconds"
  parsed=$(parse_wrk "$out") || { cat "$out" >&2; fail "could not parse wrk output for $server $case"; }
  read -r measured_rps measured_p99 errors requests <<<"$parsed"
  if ((errors > 0)); then
    cat "$out" >&2
    fail "$server answered $case with $errors errors (non-2xx or socket errors) in $requests requests"
  fi
  if ((requests == 0)); then
    cat "$out" >&2
    fail "$server completed no $case request in ${seconds}s"
  fi
}

median() {
  printf '%s\n' "$@" | sort -g | awk '
    { v[NR] = $1 }
    END { if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

ratio() {
  awk -v a="$1" -v b="$2" 'BEGIN { if (b + 0 <= 0) exit 1; printf "%.4f", a / b }' ||
    fail "cannot divide $1 by $2"
}

servers=()
((run_nginx)) && servers+=(nginx)
((run_clusweb)) && servers+=(clusweb)

echo "host: $(nproc) CPUs, $(uname -r), load average $(cut -d' ' -f1-3 /proc/loadavg)"
if awk '{ exit !($1 > 0.5) }' /proc/loadavg; then
  echo "warning: the machine is busy (1-minute load > 0.5): absolute numbers mean little and ratios are noisier"
fi
echo "versions: $("$nginx_bin" -v 2>&1 | sed 's/^nginx version: //'), $(wrk -v 2>&1 | head -n1 | cut -d' ' -f1-2), clusweb $(git -C "$repo" rev-parse --short HEAD 2>/dev/null || echo unknown)"
echo "${label}load: wrk -t1 -c$connections -d${DURATION}s --latency, keep-alive; $ROUNDS rounds per case, order alternating; ${WARMUP}s warm-up per server per case"
if ((run_nginx)); then
  echo "${label}nginx: worker_processes $THREADS, access_log off, keepalive_requests 1000000," \
    "open_file_cache max=1000 inactive=60s, open_file_cache_valid 60s, sendfile on, tcp_nopush on;" \
    "proxy: upstream keepalive 64 over a unix socket, proxy_http_version 1.1, X-Forwarded-For/Proto/Host"
fi
if ((run_clusweb)); then
  echo "${label}clusweb: threads $THREADS, access log off (default); proxy: pool 'upstream', 1 process, socket activation"
fi
if ((pinned)); then
  echo "pinning: servers on CPU 0, wrk and upstream responders on CPU 1"
  ((run_nginx)) && echo "  nginx: $(describe_family "$nginx_pid" "${nginx_workers[@]}"); upstream: $(describe_family "$responder_pid")"
  ((run_clusweb)) && echo "  clusweb: $(describe_family "$clusweb_pid" "${clusweb_front[@]}"); upstream: $(describe_family "${clusweb_upstream[@]}")"
else
  echo "${label}pinning: none"
fi

declare -A rps_of p99_of
declare -A rps_ratios p99_ratios
for case in "${cases[@]}"; do
  for server in "${servers[@]}"; do
    measure "$server" "$case" "$WARMUP"
  done
  for ((round = 1; round <= ROUNDS; round++)); do
    order=("${servers[@]}")
    if ((round % 2 == 0 && ${#servers[@]} == 2)); then order=("${servers[1]}" "${servers[0]}"); fi
    line="${label}round $round/$ROUNDS $case (first: ${order[0]}):"
    declare -A this_rps=() this_p99=()
    for server in "${order[@]}"; do
      measure "$server" "$case" "$DURATION"
      this_rps[$server]=$measured_rps
      this_p99[$server]=$measured_p99
      rps_of[$server,$case]+="$measured_rps "
      p99_of[$server,$case]+="$measured_p99 "
    done
    for server in "${servers[@]}"; do
      line+=$(printf ' %s %.0f req/s p99 %.2f ms;' "$server" "${this_rps[$server]}" "${this_p99[$server]}")
    done
    if ((${#servers[@]} == 2)); then
      r=$(ratio "${this_rps[clusweb]}" "${this_rps[nginx]}")
      p=$(ratio "${this_p99[clusweb]}" "${this_p99[nginx]}")
      rps_ratios[$case]+="$r "
      p99_ratios[$case]+="$p "
      line+=$(printf ' clusweb/nginx req/s %.2f p99 %.2f' "$r" "$p")
    fi
    echo "${line%;}"
  done
done

echo "${label}results (medians over $ROUNDS rounds)"
for case in "${cases[@]}"; do
  for server in "${servers[@]}"; do
    # shellcheck disable=SC2086
    printf '%s%-6s %-7s %8.0f req/s  p99 %6.2f ms\n' "$label" "$case" "$server" \
      "$(median ${rps_of[$server,$case]})" "$(median ${p99_of[$server,$case]})"
  done
done
if ((${#servers[@]} == 2)); then
  for case in "${cases[@]}"; do
    # shellcheck disable=SC2086
    printf '%sratio clusweb/nginx %s %.2f\n' "$label" "$case" "$(median ${rps_ratios[$case]})"
    # shellcheck disable=SC2086
    printf '%sp99 clusweb/nginx %s %.2f\n' "$label" "$case" "$(median ${p99_ratios[$case]})"
  done
fi
echo "load average at the end $(cut -d' ' -f1-3 /proc/loadavg)"
