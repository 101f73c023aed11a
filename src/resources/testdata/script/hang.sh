#!/bin/sh
# Starts a grandchild, writes its pid to CLUSWEB_PARAM_PIDFILE, then hangs.
# With CLUSWEB_PARAM_IGNORE_TERM=yes both ignore SIGTERM.
[ "$CLUSWEB_PARAM_IGNORE_TERM" = yes ] && trap '' TERM
sleep 30 &
echo "$!" > "$CLUSWEB_PARAM_PIDFILE.tmp"
mv "$CLUSWEB_PARAM_PIDFILE.tmp" "$CLUSWEB_PARAM_PIDFILE"
echo hanging
while :; do sleep 1; done
