"""The hot-path WebSocket frame codec against websocket-client's own (reference) implementation."""

import os
import socket

import pytest
import websocket
from websocket._abnf import ABNF

from protocols import frame_io
from protocols.frame_io import OPCODE_BINARY, OPCODE_PING, OPCODE_TEXT, ConnectionClosed, FrameReader, encode_client_frame


@pytest.mark.parametrize("size", [0, 5, 125, 126, 900, 65535, 65536, 200_000])
def test_client_frames_decode_with_the_reference_parser(size):
    payload = os.urandom(size)
    wire = encode_client_frame(payload, OPCODE_BINARY)
    a, b = socket.socketpair()
    try:
        a.sendall(wire)
        from websocket._abnf import frame_buffer

        buffer = frame_buffer(lambda n: b.recv(n), skip_utf8_validation=True)
        frame = buffer.recv_frame()
        assert frame.opcode == OPCODE_BINARY and frame.fin == 1 and frame.mask_value == 1
        assert frame.data == payload
    finally:
        a.close()
        b.close()


def test_reader_parses_server_frames_control_frames_and_fragments():
    a, b = socket.socketpair()
    try:
        frames = [ABNF(1, 0, 0, 0, OPCODE_TEXT, 0, b'{"kind":"AudioData"}'),
                  ABNF(1, 0, 0, 0, OPCODE_PING, 0, b"vl-1"),
                  ABNF(0, 0, 0, 0, OPCODE_TEXT, 0, b"hel"), ABNF(1, 0, 0, 0, 0x0, 0, b"lo"),
                  ABNF(1, 0, 0, 0, OPCODE_BINARY, 0, b"x" * 70000)]
        a.sendall(b"".join(f.format() for f in frames))
        a.shutdown(socket.SHUT_WR)
        reader = FrameReader(b)
        assert reader.read() == (OPCODE_TEXT, b'{"kind":"AudioData"}')
        assert reader.read() == (OPCODE_PING, b"vl-1")
        assert reader.read() == (OPCODE_TEXT, b"hello")
        assert reader.read() == (OPCODE_BINARY, b"x" * 70000)
        with pytest.raises(ConnectionClosed):
            reader.read()
    finally:
        a.close()
        b.close()


@pytest.mark.parametrize("frames, error", [
    ([ABNF(1, 0, 0, 0, 0x0, 0, b"stray")], "no message to continue"),
    ([ABNF(0, 0, 0, 0, OPCODE_TEXT, 0, b"he"), ABNF(1, 0, 0, 0, OPCODE_TEXT, 0, b"new")], "inside a fragmented one"),
    ([ABNF(1, 0, 0, 0, OPCODE_TEXT, 0, b"whole"), ABNF(1, 0, 0, 0, 0x0, 0, b"stray")], "no message to continue"),
])
def test_reader_refuses_broken_fragmentation(frames, error):
    """A continuation with nothing to continue, or a new message inside a fragmented one, is a protocol
    error (the call counts it), never silently glued onto the wrong message."""
    a, b = socket.socketpair()
    try:
        a.sendall(b"".join(f.format() for f in frames))
        reader = FrameReader(b)
        if frames[0].fin and frames[0].opcode == OPCODE_TEXT:
            assert reader.read() == (OPCODE_TEXT, b"whole")
        with pytest.raises(websocket.WebSocketProtocolException, match=error):
            reader.read()
    finally:
        a.close()
        b.close()


def test_reader_limits_the_reassembled_message_not_just_each_fragment(monkeypatch):
    monkeypatch.setattr(frame_io, "MAX_MESSAGE", 1000)
    a, b = socket.socketpair()
    try:
        a.sendall(b"".join(f.format() for f in [ABNF(0, 0, 0, 0, OPCODE_TEXT, 0, b"x" * 600),
                                                  ABNF(1, 0, 0, 0, 0x0, 0, b"y" * 600)]))
        with pytest.raises(websocket.WebSocketProtocolException, match="message of over 1000 bytes"):
            FrameReader(b).read()
    finally:
        a.close()
        b.close()
