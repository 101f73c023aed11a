#!/bin/sh
# Writes its environment and its arguments to CLUSWEB_PARAM_OUT.
env > "$CLUSWEB_PARAM_OUT"
echo "argv=$*" >> "$CLUSWEB_PARAM_OUT"
