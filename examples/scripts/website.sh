#!/bin/sh
# website.sh: a clusweb `script` resource for one site and its application
# pool, the counterpart of the WSFC "site and app pool" sample script, with
# real health checks: an HTTP probe, ready workers, a pool stopped on Offline
# when nothing else uses it, a Terminate that stops everything, and a missing
# site or pool reported as such.
#
# Configure it as a resource of type `script` with `path` = this file and:
#   site           the site (required)
#   pool           its application pool (optional: a static site has none)
#   url            probe URL through the site's binding, e.g. http://192.0.2.10/health
#                  (required for online and isalive)
#   expect_status  the HTTP status the probe expects (default 200)
#   admin_socket   the web service's admin socket (default: the CLI's default)
#   clusweb        the CLI (default: clusweb from PATH)
# They arrive as CLUSWEB_PARAM_SITE, CLUSWEB_PARAM_POOL, ...; CLUSWEB_TIMEOUT_MS is how long
# the agent lets this call run.
#
# Called as `website.sh VERB`; exit 0 = true, output lines go to the event log.
#   open, close  nothing to do
#   online       start the pool, start the site, then probe the URL until it
#                answers with the expected status (giving up half a second
#                before CLUSWEB_TIMEOUT_MS)
#   looksalive   site and pool Started and at least one ready worker
#   isalive      the probe answers with the expected status within 2 s
#   offline      stop the site, then the pool unless another started site uses it
#   terminate    stop site and pool at once
#   other verbs  exit 3 (not implemented)
#
# Needs curl, and python3 to read the CLI's JSON output.

set -u

SITE=${CLUSWEB_PARAM_SITE:-}
POOL=${CLUSWEB_PARAM_POOL:-}
URL=${CLUSWEB_PARAM_URL:-}
EXPECT=${CLUSWEB_PARAM_EXPECT_STATUS:-200}
SOCKET=${CLUSWEB_PARAM_ADMIN_SOCKET:-}
CLI=${CLUSWEB_PARAM_CLUSWEB:-clusweb}

say() { printf '%s\n' "$*"; }
fail() {
  say "$*" >&2
  exit 1
}

# cli ARGS...: runs the CLI with JSON output; $reply gets its output (the JSON,
# or the error message when it fails).
cli() {
  if [ -n "$SOCKET" ]; then set -- "$@" --socket "$SOCKET"; fi
  reply=$("$CLI" "$@" -o json 2>&1)
}

# True when the last failed CLI call failed because the site or pool does not
# exist (the CLI exits 1 for every refusal, so this reads its message).
missing() {
  case $reply in
    *"does not exist"* | *"is gone"*) return 0 ;;
  esac
  return 1
}

# json EXPRESSION [ARG...]: prints a Python expression over the JSON in $reply
# (`d`; the extra arguments are `a`).
json() {
  expression=$1
  shift
  printf '%s' "$reply" | python3 -c 'import json, sys
d = json.load(sys.stdin)
a = sys.argv[2:]
print(eval(sys.argv[1]))' "$expression" "$@"
}

# probe: prints the HTTP status the URL answers with (000 = no answer).
probe() {
  curl --silent --output /dev/null --write-out '%{http_code}' --max-time 2 "$URL"
}

need_site() { [ -n "$SITE" ] || fail "parameter site is not set"; }
need_url() {
  [ -n "$URL" ] || fail "parameter url is not set"
  case $EXPECT in
    '' | *[!0-9]*) fail "parameter expect_status is not a number: $EXPECT" ;;
  esac
}

# show KIND NAME: reads the state of a site or pool into $state (and $reply).
show() {
  if ! cli "$1" show "$2"; then
    missing && fail "$1 $2 does not exist"
    fail "cannot read $1 $2: $reply"
  fi
  state=$(json 'd.get("state", "Unknown")') || fail "cannot parse the state of $1 $2"
}

# stop KIND NAME: stops a site or pool; one that does not exist is stopped.
stop() {
  cli "$1" stop "$2" && return 0
  if missing; then
    say "$1 $2 does not exist: nothing to stop"
    return 0
  fi
  say "cannot stop $1 $2: $reply" >&2
  return 1
}

online() {
  need_site
  need_url
  if [ -n "$POOL" ]; then
    cli pool start "$POOL" || fail "cannot start pool $POOL: $reply"
  fi
  cli site start "$SITE" || fail "cannot start site $SITE: $reply"
  # Give up half a second before the agent would kill this call, with a
  # message that says why.
  limit_ms=${CLUSWEB_TIMEOUT_MS:-0}
  started=$(date +%s%3N)
  last=
  while :; do
    code=$(probe)
    if [ "$code" = "$EXPECT" ]; then
      say "site $SITE is online: $URL answers $code"
      exit 0
    fi
    [ "$code" != "$last" ] && say "waiting for $URL: it answers $code, expected $EXPECT"
    last=$code
    if [ "$limit_ms" -gt 0 ] && [ $(($(date +%s%3N) - started)) -ge $((limit_ms - 500)) ]; then
      fail "site $SITE did not come online: $URL answers $code, expected $EXPECT"
    fi
    sleep 0.2
  done
}

looksalive() {
  need_site
  show site "$SITE"
  [ "$state" = Started ] || fail "site $SITE is $state"
  [ -n "$POOL" ] || exit 0
  show pool "$POOL"
  [ "$state" = Started ] || fail "pool $POOL is $state"
  ready=$(json 'sum(1 for w in d.get("workers", []) if w.get("ready") is True)') ||
    fail "cannot parse the workers of pool $POOL"
  [ "$ready" -gt 0 ] || fail "pool $POOL has no ready worker"
  exit 0
}

isalive() {
  need_url
  code=$(probe)
  [ "$code" = "$EXPECT" ] && exit 0
  [ "$code" = 000 ] && fail "$URL does not answer within 2 s"
  fail "$URL answers $code, expected $EXPECT"
}

offline() {
  need_site
  stop site "$SITE" || exit 1
  [ -n "$POOL" ] || exit 0
  # Another started site with an application in the pool keeps it running.
  if ! cli site list; then
    say "pool $POOL left running: cannot list the sites to see who uses it: $reply" >&2
    exit 0
  fi
  users=$(json '" ".join(s["name"] for s in d.get("sites", [])
      if s.get("name") != a[0] and s.get("state") in ("Started", "Starting")
      and any(app.get("pool") == a[1] for app in s.get("applications", [])))' "$SITE" "$POOL") ||
    fail "cannot parse the site list"
  if [ -n "$users" ]; then
    say "pool $POOL left running: used by $users"
    exit 0
  fi
  stop pool "$POOL" || exit 1
  exit 0
}

# Immediate: no checks, no drain. The pool stops even if other sites use it,
# since Terminate must end everything this resource started.
terminate() {
  need_site
  failed=0
  stop site "$SITE" || failed=1
  if [ -n "$POOL" ]; then stop pool "$POOL" || failed=1; fi
  exit "$failed"
}

case ${1:-} in
  open | close) exit 0 ;;
  online) online ;;
  looksalive) looksalive ;;
  isalive) isalive ;;
  offline) offline ;;
  terminate) terminate ;;
  *)
    say "unknown verb: ${1:-}" >&2
    exit 3
    ;;
esac
