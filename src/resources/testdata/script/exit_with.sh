#!/bin/sh
# Prints its verb, then exits with CLUSWEB_PARAM_EXIT (default 0).
echo "verb=$1"
exit "${CLUSWEB_PARAM_EXIT:-0}"
