#!/bin/sh
# online: writes its pid to CLUSWEB_PARAM_PIDFILE and hangs; terminate:
# prints "terminated"; anything else: exit 0.
case "$1" in
  online)
    echo "$$" > "$CLUSWEB_PARAM_PIDFILE.tmp"
    mv "$CLUSWEB_PARAM_PIDFILE.tmp" "$CLUSWEB_PARAM_PIDFILE"
    while :; do sleep 1; done
    ;;
  terminate) echo terminated ;;
esac
exit 0
