"""WebSocket frames on the hot path, with as little per-frame Python as possible.

websocket-client builds each outgoing frame through several layers and reads each incoming one with
three socket reads; at 50 frames per second per call that is most of a generator's CPU. Here an
outgoing frame is one header, a C masking call (wsaccel) and one sendall under the socket's lock;
incoming frames are parsed from a buffer filled by large reads. The handshake, pings and closing
stay with websocket-client.
"""

from __future__ import annotations

import os
import struct

import websocket
from websocket._abnf import ABNF

try:
    from wsaccel.xormask import XorMaskerSimple
except ImportError:  # pragma: no cover - wsaccel is in requirements.txt; this is the slow fallback
    XorMaskerSimple = None

try:
    from gevent.socket import socket as _GEVENT_SOCKET
except ImportError:  # pragma: no cover - gevent comes with Locust
    _GEVENT_SOCKET = None

OPCODE_CONT, OPCODE_TEXT, OPCODE_BINARY = 0x0, 0x1, 0x2
OPCODE_CLOSE, OPCODE_PING, OPCODE_PONG = 0x8, 0x9, 0xA
READ_SIZE = 65536
MAX_MESSAGE = 16 * 1024 * 1024


class ConnectionClosed(websocket.WebSocketConnectionClosedException):
    """The peer closed the TCP connection."""


def encode_client_frame(payload: bytes, opcode: int = OPCODE_TEXT) -> bytes:
    """One final, masked client frame (RFC 6455 5.2)."""
    mask = os.urandom(4)
    size = len(payload)
    if size < 126:
        header = bytes((0x80 | opcode, 0x80 | size))
    elif size < 65536:
        header = struct.pack("!BBH", 0x80 | opcode, 0xFE, size)
    else:
        header = struct.pack("!BBQ", 0x80 | opcode, 0xFF, size)
    masked = XorMaskerSimple(mask).process(payload) if XorMaskerSimple else ABNF.mask(mask, payload)
    return header + mask + masked


def send_data_frame(ws: websocket.WebSocket, payload: bytes, opcode: int = OPCODE_TEXT) -> None:
    """Send one data frame on a websocket-client socket, serialized with its own sends (pings).

    A frame is a few hundred bytes and the kernel's send buffer nearly always has room: on a plain
    (not TLS) gevent socket it is handed straight to the OS socket, which gevent keeps non-blocking,
    and gevent's sendall (a timeout, a wait loop) only takes what did not fit."""
    data = encode_client_frame(payload, opcode)
    sock = ws.sock
    with ws.lock:
        if type(sock) is _GEVENT_SOCKET:  # exactly: gevent's SSLSocket subclasses it, and must encrypt
            try:
                sent = sock._sock.send(data)
            except BlockingIOError:
                sent = 0
            if sent == len(data):
                return
            data = memoryview(data)[sent:]
        sock.sendall(data)


class FrameReader:
    """Reads server frames (unmasked) from a socket through a buffer; reassembles fragmented messages."""

    def __init__(self, sock) -> None:
        self.sock = sock
        self.buffer = bytearray()
        self._fragments: list[bytes] = []
        self._fragment_bytes = 0  # of the message being reassembled
        self._fragment_opcode = 0

    def _fill(self, needed: int) -> None:
        while len(self.buffer) < needed:
            chunk = self.sock.recv(READ_SIZE)
            if not chunk:
                raise ConnectionClosed("connection closed by the server")
            self.buffer += chunk

    def read(self) -> tuple[int, bytes]:
        """The next whole message or control frame: (opcode, payload)."""
        while True:
            self._fill(2)
            first, second = self.buffer[0], self.buffer[1]
            size = second & 0x7F
            offset = 2
            if size == 126:
                self._fill(4)
                size = struct.unpack_from("!H", self.buffer, 2)[0]
                offset = 4
            elif size == 127:
                self._fill(10)
                size = struct.unpack_from("!Q", self.buffer, 2)[0]
                offset = 10
            if size + self._fragment_bytes > MAX_MESSAGE:
                raise websocket.WebSocketProtocolException(f"message of over {MAX_MESSAGE} bytes")
            mask = b""
            if second & 0x80:  # servers must not mask, but tolerate it
                self._fill(offset + 4)
                mask = bytes(self.buffer[offset:offset + 4])
                offset += 4
            self._fill(offset + size)
            payload = bytes(self.buffer[offset:offset + size])
            del self.buffer[:offset + size]
            if mask:
                payload = ABNF.mask(mask, payload)
            opcode, final = first & 0x0F, bool(first & 0x80)
            if opcode >= OPCODE_CLOSE:
                return opcode, payload  # control frames are never fragmented
            if opcode != OPCODE_CONT and self._fragments:
                raise websocket.WebSocketProtocolException("a new message began inside a fragmented one")
            if opcode == OPCODE_CONT and not self._fragments:
                raise websocket.WebSocketProtocolException("a continuation frame with no message to continue")
            if opcode != OPCODE_CONT and final:
                return opcode, payload
            if opcode != OPCODE_CONT:
                self._fragment_opcode = opcode
            self._fragments.append(payload)
            self._fragment_bytes += size
            if final:
                message, self._fragments, self._fragment_bytes = b"".join(self._fragments), [], 0
                opcode, self._fragment_opcode = self._fragment_opcode, 0
                return opcode, message
