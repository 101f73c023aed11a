#!/usr/bin/env python3
"""Asks http://ADDRESS:PORT/PATH again and again, each time on a new connection, and prints
one line per attempt:

    START END STATUS BODY

START and END are CLOCK_MONOTONIC seconds (shared by every network namespace of the
machine), STATUS the HTTP status (0 = no answer: refused, reset, timed out), BODY the first
line of the body ("-" when there is none). Runs until killed.

    probe.py ADDRESS PORT [PATH] [INTERVAL_MS]
"""

import socket
import sys
import time

CONNECT_TIMEOUT = 0.1  # a SYN sent nowhere (a cut link) costs this much
ANSWER_TIMEOUT = 0.5


def ask(address, port, path):
    with socket.create_connection((address, port), timeout=CONNECT_TIMEOUT) as conn:
        conn.settimeout(ANSWER_TIMEOUT)
        conn.sendall(("GET %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n"
                      % (path, address)).encode())
        data = b""
        while True:
            chunk = conn.recv(4096)
            if not chunk:
                break
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    status_line = head.split(b"\r\n", 1)[0].split()
    if len(status_line) < 2 or not status_line[1].isdigit():
        return 0, "-"
    first = body.split(b"\n", 1)[0].strip().decode(errors="replace")
    return int(status_line[1]), first.replace(" ", "_") or "-"


def main():
    if len(sys.argv) < 3:
        sys.exit("usage: probe.py ADDRESS PORT [PATH] [INTERVAL_MS]")
    address, port = sys.argv[1], int(sys.argv[2])
    path = sys.argv[3] if len(sys.argv) > 3 else "/"
    interval = (float(sys.argv[4]) if len(sys.argv) > 4 else 20.0) / 1000.0
    while True:
        start = time.monotonic()
        try:
            status, body = ask(address, port, path)
        except OSError:
            status, body = 0, "-"
        end = time.monotonic()
        print("%.4f %.4f %d %s" % (start, end, status, body), flush=True)
        time.sleep(max(0.0, interval - (end - start)))


if __name__ == "__main__":
    main()
