#!/usr/bin/env python3
"""Abuse a signer's metrics port while a benchmark runs: IDLE connections
held open (sending nothing), a stream of malformed requests, and a slow
client that sends one byte a second. Runs until killed; prints what it did.

  python3 scripts/metrics_abuse.py 127.0.0.1:9101 --idle 10000
"""
import argparse
import random
import signal
import socket
import sys
import threading
import time

MALFORMED = [
    b"\x00\xff\xfe garbage\r\n\r\n",
    b"GET\r\n\r\n",
    b"POST /metrics HTTP/1.1\r\n\r\n",
    b"GET /metrics HTTP/9.9\r\n\r\n",
    b"GET /" + b"a" * 10000 + b" HTTP/1.1\r\n\r\n",
    b"GET /metrics HTTP/1.1\r\n" + b"X: y\r\n" * 2000 + b"\r\n",
    b"GET /../../etc/passwd HTTP/1.1\r\n\r\n",
]

stats = {"idle": 0, "idle_failed": 0, "malformed": 0, "slow_bytes": 0}
stop = threading.Event()


def idle(addr, count):
    held = []
    for _ in range(count):
        try:
            s = socket.create_connection(addr, timeout=2)
            held.append(s)
            stats["idle"] += 1
        except OSError:
            stats["idle_failed"] += 1
    stop.wait()


def malformed(addr):
    while not stop.is_set():
        try:
            with socket.create_connection(addr, timeout=2) as s:
                s.sendall(random.choice(MALFORMED))
                s.settimeout(2)
                try:
                    s.recv(4096)
                except OSError:
                    pass
            stats["malformed"] += 1
        except OSError:
            time.sleep(0.01)


def slow(addr):
    while not stop.is_set():
        try:
            with socket.create_connection(addr, timeout=5) as s:
                for byte in b"GET /metrics HTTP/1.1\r\n\r\n":
                    if stop.wait(1.0):
                        return
                    s.sendall(bytes([byte]))
                    stats["slow_bytes"] += 1
        except OSError:
            time.sleep(0.1)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("addr")
    parser.add_argument("--idle", type=int, default=10000)
    args = parser.parse_args()
    host, port = args.addr.rsplit(":", 1)
    addr = (host, int(port))
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    threads = [threading.Thread(target=idle, args=(addr, args.idle), daemon=True),
               threading.Thread(target=malformed, args=(addr,), daemon=True),
               threading.Thread(target=slow, args=(addr,), daemon=True)]
    for t in threads:
        t.start()
    while not stop.is_set():
        stop.wait(0.2)
    print("abuse: {idle} idle connections opened ({idle_failed} failed), {malformed} malformed requests, "
          "{slow_bytes} slow bytes".format(**stats), flush=True)


if __name__ == "__main__":
    sys.exit(main())
