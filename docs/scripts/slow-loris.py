#!/usr/bin/env python3
# Slow-loris clients for docs/reliability.md: `python3 docs/scripts/slow-loris.py PORT N SECONDS`.
import socket, sys, time
# Opens N connections that send half a request's headers and then nothing; reopens any the
# server closes, for DURATION seconds.
port, n, duration = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
def open_one():
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(b"POST /api/v1/ingest/falco HTTP/1.1\r\nHost: x\r\nX-Slow: ")
    s.setblocking(False)
    return s
conns = [open_one() for _ in range(n)]
print("open", len(conns), flush=True)
end = time.time() + duration
while time.time() < end:
    time.sleep(0.2)
    for i, s in enumerate(conns):
        try:
            if s.recv(1) == b"":
                conns[i] = open_one()
        except BlockingIOError:
            pass
        except OSError:
            conns[i] = open_one()
