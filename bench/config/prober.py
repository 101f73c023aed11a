#!/usr/bin/env python3
"""Asks http://ADDRESS:PORT/ of every address given, each address in a thread of its own, again
and again, each time on a new connection, and prints one line whenever an address answers
differently from its previous answer (and once for its first answer):

    ADDRESS START END STATUS BODY

START and END are the CLOCK_MONOTONIC seconds (shared by every network namespace of the
machine) of the attempt that first got the new answer, STATUS the HTTP status (0 = no answer:
refused, reset, timed out), BODY the first line of the body ("-" when there is none). An
address's attempts start INTERVAL_MS apart (or back to back when one takes longer).

It starts asking at once. A line "pause" on stdin stops the asking after the attempts under
way (nothing is interrupted, so a pause never shows as a failed attempt), "resume" starts it
again. Runs until killed or until stdin closes.

    prober.py PORT INTERVAL_MS ADDRESS...
"""

import os
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                "failover"))

from probe import ask  # noqa: E402

PRINT_LOCK = threading.Lock()
ASKING = threading.Event()


def watch(address, port, interval):
    previous = None
    while True:
        ASKING.wait()
        start = time.monotonic()
        try:
            answer = ask(address, port, "/")
        except OSError:
            answer = (0, "-")
        end = time.monotonic()
        if answer != previous:
            with PRINT_LOCK:
                print("%s %.6f %.6f %d %s" % (address, start, end, *answer), flush=True)
            previous = answer
        time.sleep(max(0.0, interval - (end - start)))


def main():
    if len(sys.argv) < 4:
        sys.exit("usage: prober.py PORT INTERVAL_MS ADDRESS...")
    port, interval = int(sys.argv[1]), float(sys.argv[2]) / 1000.0
    ASKING.set()
    for address in sys.argv[3:]:
        threading.Thread(target=watch, args=(address, port, interval), daemon=True).start()
    for line in sys.stdin:
        if line.strip() == "pause":
            ASKING.clear()
        elif line.strip() == "resume":
            ASKING.set()


if __name__ == "__main__":
    main()
