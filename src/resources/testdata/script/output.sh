#!/bin/sh
# 150 numbered lines (odd ones on stderr), one 2000-byte line, a CRLF line and
# a last line without a newline.
i=1
while [ "$i" -le 150 ]; do
  if [ $((i % 2)) -eq 1 ]; then echo "line $i" >&2; else echo "line $i"; fi
  i=$((i + 1))
done
long=x
while [ ${#long} -lt 2000 ]; do long="$long$long"; done
printf '%.2000s\n' "$long"
printf 'windows\r\n'
printf 'last'
