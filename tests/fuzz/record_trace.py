#!/usr/bin/env python3
"""Records what PostgreSQL clients send, as seeds for the protocol fuzzer (tests/tests/fuzz.rs).

Listens on --listen, forwards every connection to --upstream (a running `weft serve` or
PostgreSQL), and writes each connection's client-to-server bytes to
<out>-<n>.bin. Run a client against --listen, then stop this with Ctrl-C:

    python3 tests/fuzz/record_trace.py --listen 127.0.0.1:6543 \
        --upstream 127.0.0.1:5432 --out testdata/fuzz/seeds/psql
    psql "host=127.0.0.1 port=6543 user=postgres sslmode=disable" -c 'SELECT 1'

Clients must not use TLS (sslmode=disable): the fuzzer replays plaintext.
"""
import argparse
import socket
import threading

def pump(src, dst, sink):
    try:
        while True:
            data = src.recv(65536)
            if not data:
                break
            if sink is not None:
                sink.write(data)
                sink.flush()
            dst.sendall(data)
    except OSError:
        pass
    finally:
        try:
            dst.shutdown(socket.SHUT_WR)
        except OSError:
            pass

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--listen", required=True)
    ap.add_argument("--upstream", required=True)
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    lh, lp = args.listen.rsplit(":", 1)
    uh, up = args.upstream.rsplit(":", 1)
    server = socket.socket()
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind((lh, int(lp)))
    server.listen()
    n = 0
    while True:
        client, _ = server.accept()
        upstream = socket.create_connection((uh, int(up)))
        sink = open(f"{args.out}-{n}.bin", "wb")
        n += 1
        threading.Thread(target=pump, args=(client, upstream, sink), daemon=True).start()
        threading.Thread(target=pump, args=(upstream, client, None), daemon=True).start()

if __name__ == "__main__":
    main()
