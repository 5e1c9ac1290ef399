"""What one outgoing audio frame costs the generator, with and without the direct send.

    python bench/frame_send.py [--frames 50000]

Sends ACS-sized frames (a 640-byte PCM16 20 ms frame, base64 in JSON, masked) over a local socket pair
under gevent, drained by a greenlet, first through gevent's sendall (websocket-client's way) and then
through protocols.frame_io.send_data_frame, which hands a frame straight to the non-blocking OS socket.
Prints microseconds per frame for each, twice, and the ratio.
"""

from __future__ import annotations

from gevent import monkey

monkey.patch_all()

import argparse  # noqa: E402
import socket  # noqa: E402
import sys  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import gevent  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from protocols.frame_io import encode_client_frame, send_data_frame  # noqa: E402

PAYLOAD = b'{"kind":"AudioData","audioData":{"data":"' + b"A" * 856 + b'","silent":false}}'


class SocketHolder:
    """The two attributes of a websocket-client socket that send_data_frame uses."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock, self.lock = sock, threading.Lock()


def through_sendall(ws: SocketHolder, payload: bytes) -> None:
    data = encode_client_frame(payload)
    with ws.lock:
        ws.sock.sendall(data)


def per_frame_us(send, ws: SocketHolder, frames: int) -> float:
    started = time.perf_counter()
    for index in range(frames):
        send(ws, PAYLOAD)
        if index % 50 == 0:
            gevent.sleep(0)  # let the reader drain, as a running call would
    return (time.perf_counter() - started) / frames * 1e6


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=50_000, help="frames per measurement (default 50000)")
    args = parser.parse_args()
    writer, reader = socket.socketpair()
    drain = gevent.spawn(lambda: [None for _ in iter(lambda: reader.recv(1 << 20), b"")])
    ws = SocketHolder(writer)
    results: dict[str, list[float]] = {"gevent sendall": [], "direct send": []}
    for _ in range(2):
        results["gevent sendall"].append(per_frame_us(through_sendall, ws, args.frames))
        results["direct send"].append(per_frame_us(send_data_frame, ws, args.frames))
    writer.close()
    drain.join(timeout=5)
    reader.close()
    for name, values in results.items():
        print(f"{name:>15}: {' '.join(f'{v:5.2f}' for v in values)} us per frame")
    best = {name: min(values) for name, values in results.items()}
    print(f"direct / sendall: {best['direct send'] / best['gevent sendall']:.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
