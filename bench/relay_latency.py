#!/usr/bin/env python3
"""Request/response latency through a relay client on loopback.

Runs an echo server in this process, starts CLIENT (a command with @PORT@
for the port, e.g. "target/release/sockbox connect 127.0.0.1 @PORT@") with
pipes on its stdin and stdout, and times N small line round trips through
it. Prints "<median_us> <p99_us>". Used by bench/relay.sh.
"""
import os
import shlex
import socket
import statistics
import subprocess
import sys
import threading
import time


def echo(srv):
    conn, _ = srv.accept()
    conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    while True:
        data = conn.recv(65536)
        if not data:
            break
        conn.sendall(data)
    conn.close()


def main():
    client, port = sys.argv[1], int(sys.argv[2])
    n = int(sys.argv[3]) if len(sys.argv) > 3 else 3000
    srv = socket.socket()
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", port))
    srv.listen(1)
    threading.Thread(target=echo, args=(srv,), daemon=True).start()
    argv = shlex.split(client.replace("@PORT@", str(port)))
    proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, bufsize=0)
    out, inp = proc.stdout.fileno(), proc.stdin.fileno()
    times = []
    for i in range(n):
        msg = b"ping %d\n" % i
        t0 = time.perf_counter()
        os.write(inp, msg)
        got = b""
        while len(got) < len(msg):
            chunk = os.read(out, 4096)
            if not chunk:
                sys.exit(f"relay closed after {i} round trips")
            got += chunk
        times.append(time.perf_counter() - t0)
        if got != msg:
            sys.exit(f"round trip {i}: sent {msg!r}, got {got!r}")
    proc.stdin.close()
    proc.wait(timeout=10)
    times.sort()
    print(f"{statistics.median(times) * 1e6:.1f} {times[int(len(times) * 0.99)] * 1e6:.1f}")


if __name__ == "__main__":
    main()
