#!/bin/sh
# Leaves a child behind that keeps stdout open, writes its pid to
# CLUSWEB_PARAM_PIDFILE and exits 0.
sleep 30 &
echo "$!" > "$CLUSWEB_PARAM_PIDFILE"
echo started
exit 0
