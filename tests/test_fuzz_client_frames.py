"""The caller side fuzzed with hypothesis: the codecs' parsers and audio decoders, the hot-path frame
reader, and the call's receive loop on a real socket fed by a misbehaving peer.

The contract (protocols/media.py, voice/call_session.py, voice/call_receiver.py): a frame from the server that does not follow
the protocol raises ProtocolError, which the receive loop counts as a malformed frame; anything else
escaping a parser would kill the call's receiver. The frame reader returns (opcode, payload) or raises
ConnectionClosed / WebSocketProtocolException, which end the call as a dropped socket.
No locust import here (it breaks ssl under pytest): protocols/* and voice.call_session do not import it.
"""

from __future__ import annotations

import base64
import json
import math
import random
import socket
import threading
from collections import Counter

import numpy as np
import pytest
import websocket
from hypothesis import example, given, settings
from hypothesis import strategies as st
from websocket._abnf import ABNF

from protocols.acs import AcsCodec
from protocols.browser import BrowserCodec
from protocols.frame_io import (MAX_MESSAGE, OPCODE_BINARY, OPCODE_CLOSE, OPCODE_CONT, OPCODE_PING, OPCODE_PONG,
                                OPCODE_TEXT, ConnectionClosed, FrameReader)
from protocols.media import (ASSISTANT_TEXT, AUDIO, MARK, OTHER, STOP_AUDIO, TRANSCRIPT_FINAL, TRANSCRIPT_PARTIAL,
                             InboundEvent, ProtocolError, b64_size)
from protocols.twilio import TwilioCodec
from audio.pcm import mulaw_decode
from voice.call_plan import CallPlan
from voice.call_result import Turn
from voice.call_session import CallSession
from audio.fixtures import Clip

pytestmark = pytest.mark.timeout(120)
FUZZ = settings(max_examples=200, deadline=None, database=None)
FUZZ_IO = settings(max_examples=150, deadline=None, database=None)  # sockets, threads, up to 64 KiB frames

CODECS = {"acs": lambda: AcsCodec("fuzz-call"), "twilio": lambda: TwilioCodec("CAfuzz", "MZfuzz"), "browser": BrowserCodec}
KIND_KEY = {"acs": "kind", "twilio": "event", "browser": "type"}
KINDS = {AUDIO, STOP_AUDIO, MARK, TRANSCRIPT_PARTIAL, TRANSCRIPT_FINAL, ASSISTANT_TEXT, OTHER}
TEXT_KINDS = {TRANSCRIPT_PARTIAL, TRANSCRIPT_FINAL, ASSISTANT_TEXT, OTHER}
B64_BYTES_PER_MS = {"acs": 32.0, "twilio": 8.0}  # decoded audio bytes per ms: PCM16 16 kHz, mu-law 8 kHz


@pytest.fixture(scope="module", params=list(CODECS))  # parsing keeps no state between frames
def codec(request):
    return CODECS[request.param]()


# -- strategies ---------------------------------------------------------------------------------
any_text = st.text(st.characters(exclude_categories=()), max_size=30)  # lone surrogates included
huge_numbers = (st.integers(min_value=-10**400, max_value=10**400) | st.sampled_from([0, -1, 1, 2**63, 10**400, True, False])
                | st.floats(allow_nan=True, allow_infinity=True) | st.sampled_from([5e-324, 1e-320, 1e308, -0.0]))
json_scalars = st.none() | st.booleans() | huge_numbers | any_text
json_values = st.recursive(json_scalars, lambda inner: st.lists(inner, max_size=4)
                           | st.dictionaries(any_text, inner, max_size=4), max_leaves=8)
b64_alphabet = st.text(st.sampled_from("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/="), max_size=64)
# base64 of real audio, of odd-length audio, with bad padding or characters, escaped, unicode: all an agent may send
b64ish = (st.binary(max_size=48).map(lambda raw: base64.b64encode(raw).decode()) | b64_alphabet
          | st.sampled_from(["", "=", "A", "AA", "AAA", "AAAA=", "!!!not base64!!!", "\u00e9\u00e9\u00e9\u00e9", "AA\nAA"])
          | any_text)


def nested(depth: int, opener: str) -> str:
    return "[" * depth + "]" * depth if opener == "[" else '{"a":' * depth + "1" + "}" * depth


deep_json = st.builds(nested, st.integers(min_value=900, max_value=120_000), st.sampled_from(["[", "{"]))


def dumps(value, compact: bool, ascii_only: bool = True) -> str:
    return json.dumps(value, separators=(",", ":") if compact else None, ensure_ascii=ascii_only)


def as_wire(text: str, form: str) -> bytes | bytearray | str:
    """A frame as the receive loop gets it (bytes), as websocket-client's recv gives it (str), or a bytearray."""
    if form == "str":
        return text
    raw = text.encode("utf-8", "surrogatepass")  # a lone surrogate becomes invalid UTF-8, as a broken peer sends it
    return bytearray(raw) if form == "bytearray" else raw


wire_forms = st.sampled_from(["bytes", "bytes", "str", "bytearray"])


def text_of(data) -> str:
    return data.decode("utf-8", "surrogatepass") if isinstance(data, (bytes, bytearray)) else data


def parse_or_error(codec, message) -> InboundEvent | ProtocolError:
    """The contract under test: an InboundEvent or ProtocolError, never any other exception."""
    try:
        event = codec.parse(message)
    except ProtocolError as exc:
        assert str(exc), "a ProtocolError carries its reason (it is what the report shows)"
        return exc
    check_event(event)
    return event


def check_event(event) -> None:
    assert isinstance(event, InboundEvent), type(event)
    assert event.kind in KINDS, event.kind
    assert isinstance(event.duration_ms, float) and math.isfinite(event.duration_ms) and event.duration_ms >= 0, event
    if event.kind == AUDIO:
        assert isinstance(event.data, (str, bytes)), event
    else:
        assert event.duration_ms == 0.0, event
        if event.kind in TEXT_KINDS:
            assert isinstance(event.data, str), event
        else:
            assert event.data is None, event


def decode_or_error(decode, payload) -> np.ndarray | ProtocolError:
    try:
        samples = decode(payload)
    except ProtocolError as exc:
        return exc
    assert isinstance(samples, np.ndarray) and samples.dtype == np.int16 and samples.ndim == 1, samples
    return samples


def acs_kind(obj: dict):
    """The "kind" an ACS frame names: exact key first, then any casing ("Kind")."""
    if "kind" in obj:
        return obj["kind"]
    return next((value for key, value in obj.items() if key.lower() == "kind"), None)


# -- 1. parse: anything at all ----------------------------------------------------------------------
@FUZZ
@given(message=st.binary(max_size=300) | any_text | st.binary(max_size=300).map(bytearray))
@example(message=b"[" * 100_000)
@example(message="{" * 5000)
@example(message="1" * 5000)  # beyond Python's int string limit
@example(message=b"\xff\xfe{}")
@example(message=b"")
def test_parse_arbitrary_bytes_and_text(codec, message):
    result = parse_or_error(codec, message)
    try:
        obj = json.loads(message)
    except (ValueError, RecursionError):
        obj = None
    if not isinstance(obj, dict):  # not JSON, or not an object: never a frame of any of these protocols
        assert isinstance(result, ProtocolError), (message, result)


@FUZZ
@given(message=st.none() | st.integers() | st.floats() | st.lists(st.integers(), max_size=3) | st.just(memoryview(b"{}")))
def test_parse_of_a_non_text_object_is_a_protocol_error(codec, message):
    assert isinstance(parse_or_error(codec, message), ProtocolError)


# JSON objects that look a little like frames: their keys and kind values, with anything under them
envelope_keys = st.sampled_from(["kind", "Kind", "event", "type", "data", "payload", "media", "audioData"]) | any_text
kind_names = st.sampled_from(["AudioData", "StopAudio", "media", "clear", "mark", "audio_data", "control", "event",
                              "assistant_streaming"])
envelope_like = st.dictionaries(envelope_keys, json_values | kind_names, max_size=5)
AUDIO_KIND = {"acs": "audiodata", "twilio": "media", "browser": "audio_data"}


@FUZZ
@given(value=json_values | envelope_like, compact=st.booleans(), form=wire_forms)
def test_parse_arbitrary_json_values(codec, value, compact, form):
    result = parse_or_error(codec, as_wire(dumps(value, compact), form))
    kind = (acs_kind(value) if codec.name == "acs" else value.get(KIND_KEY[codec.name])) if isinstance(value, dict) else None
    if not isinstance(kind, str):
        assert isinstance(result, ProtocolError), (value, result)
        return
    kind = kind.lower() if codec.name == "acs" else kind
    if kind != AUDIO_KIND[codec.name]:  # only audio can be missing its payload
        assert isinstance(result, InboundEvent), (value, result)
    if isinstance(result, InboundEvent) and result.kind == OTHER:
        assert result.data == kind


@FUZZ
@given(text=deep_json, form=wire_forms)
def test_deeply_nested_json_is_a_protocol_error(codec, text, form):
    """json.loads raises RecursionError (not ValueError) past ~1000 levels: it used to kill the receiver."""
    assert isinstance(parse_or_error(codec, as_wire(text, form)), ProtocolError)


# -- 1. parse: near-valid envelopes of each protocol ----------------------------------------------------
missing = object()
field_value = st.just(missing) | json_values | b64ish
extras = st.dictionaries(st.sampled_from(["timestamp", "participantRawID", "silent", "sequenceNumber", "streamSid", "chunk",
                                          "track", "topic", "session_id", "is_final", "x"]), json_values, max_size=3)


def maybe(strategy):
    """The strategy's value, or a mistyped one, or nothing (`missing`)."""
    return st.just(missing) | strategy | json_values


def present(obj: dict) -> dict:
    return {key: value for key, value in obj.items() if value is not missing}


def put(obj: dict, key: str, value) -> dict:
    if value is not missing:
        obj[key] = value
    return obj


@st.composite
def acs_audio(draw):
    """{"kind":"AudioData","audioData":{"data":...}} with every part possibly missing, mistyped or recased."""
    data = draw(field_value)
    inner = draw(st.just(missing) | json_values | st.builds(lambda extra: put({}, "data", data) | extra, extras))
    kind = draw(st.sampled_from(["AudioData", "audiodata", "AUDIODATA"]))
    return put({"kind": kind}, draw(st.sampled_from(["audioData", "AudioData", "audiodata"])), inner) | draw(extras)


@st.composite
def twilio_media(draw):
    data = draw(field_value)
    inner = draw(st.just(missing) | json_values | st.builds(lambda extra: extra | put({}, "payload", data), extras))
    return put({"event": "media"} | draw(extras), "media", inner)  # media and payload last: the fast path's shape


@st.composite
def browser_audio(draw):
    frame = put({"type": "audio_data"}, "data", draw(field_value))
    nested_data = st.builds(lambda data: put({}, "data", data), field_value)
    frame = put(frame, "payload", draw(st.just(missing) | json_values | nested_data))
    return put(frame, "sample_rate", draw(st.just(missing) | huge_numbers | json_values)) | draw(extras)


def expected_audio(codec_name: str, frame: dict):
    """The payload string an audio frame carries, or None when it carries none (a ProtocolError)."""
    if codec_name == "acs":
        inner = next((v for k, v in frame.items() if k.lower() == "audiodata"), None)
        inner = frame.get("audioData", inner)
        inner = inner if isinstance(inner, dict) else {}
        data = inner.get("data", next((v for k, v in inner.items() if k.lower() == "data"), None))
    elif codec_name == "twilio":
        data = frame["media"].get("payload") if isinstance(frame.get("media"), dict) else None
    else:
        payload = frame["payload"] if isinstance(frame.get("payload"), dict) else {}
        data = frame.get("data", payload.get("data"))
    return data if isinstance(data, str) else None


def browser_rate(frame: dict) -> float:
    rate = frame.get("sample_rate", 16000)
    return rate if isinstance(rate, (int, float)) and 1 <= rate <= 1_000_000 else 16000


AUDIO_FRAMES = {"acs": acs_audio(), "twilio": twilio_media(), "browser": browser_audio()}


@pytest.mark.parametrize("name", list(CODECS))
@FUZZ
@given(data=st.data(), compact=st.booleans(), ascii_only=st.booleans(), form=wire_forms)
def test_near_valid_audio_frames(name, data, compact, ascii_only, form):
    codec = CODECS[name]()
    frame = data.draw(AUDIO_FRAMES[name])
    text = dumps(frame, compact, ascii_only)
    result = parse_or_error(codec, as_wire(text, form))
    if form != "str" and any("\ud800" <= c <= "\udfff" for c in text):
        return  # a lone surrogate sent raw is invalid UTF-8: only the contract holds (checked above)
    payload = expected_audio(name, frame)
    if payload is None:
        assert isinstance(result, ProtocolError), (frame, result)
        return
    assert isinstance(result, InboundEvent) and result.kind == AUDIO, (frame, result)
    assert text_of(result.data) == payload
    per_ms = B64_BYTES_PER_MS[name] if name != "browser" else 2.0 * browser_rate(frame) / 1000.0
    assert result.duration_ms == pytest.approx(b64_size(result.data) / per_ms)
    decoded = decode_or_error(codec.decode_audio, result.data)  # what the receiver does with the first frames of a reply
    if isinstance(decoded, np.ndarray) and payload.isascii():
        assert decoded.tobytes() == reference_decode(name, base64.b64decode(payload)).tobytes()


@pytest.mark.parametrize("name", ["acs", "twilio"])
@FUZZ
@given(payload=b64ish | st.text(st.characters(max_codepoint=127), max_size=40), slash_escaped=st.booleans(),
       other=st.dictionaries(st.sampled_from(["timestamp", "participantRawID", "track", "chunk"]), any_text, max_size=3))
@example(payload="AAAA/+//", slash_escaped=True, other={})  # PHP's json_encode writes "\/"
@example(payload='a",', slash_escaped=False, other={})  # an escaped quote just before ","
def test_fast_path_agrees_with_the_json_parse(name, payload, slash_escaped, other):
    """The audio frame read without a JSON parse (bytes, compact, payload in place) gives what the JSON
    parse of the same frame gives, escapes included."""
    escaped = json.dumps(payload).replace("/", "\\/") if slash_escaped else json.dumps(payload)
    fields = [f"{json.dumps(key)}:{json.dumps(value)}" for key, value in other.items()]
    if name == "acs":
        text = '{"kind":"AudioData","audioData":{%s}}' % ",".join([f'"data":{escaped}'] + fields)
    else:
        text = '{"event":"media","sequenceNumber":"2","media":{%s}}' % ",".join(fields + [f'"payload":{escaped}'])
    codec = CODECS[name]()
    fast, slow = codec.parse(text.encode()), codec.parse(text)  # a str never takes the fast path
    assert fast.kind == slow.kind == AUDIO
    assert text_of(fast.data) == slow.data == payload
    assert fast.duration_ms == slow.duration_ms


@pytest.mark.parametrize("name", ["acs", "twilio"])
@FUZZ
@given(middle=st.binary(max_size=200))
def test_fast_path_shaped_garbage(name, middle):
    """Bytes in the fast path's shape around arbitrary content: an event or ProtocolError, and its audio
    decodes to samples or ProtocolError."""
    codec = CODECS[name]()
    head = b'{"kind":"AudioData","audioData":{"data":"' if name == "acs" else b'{"event":"media","media":{"payload":"'
    for message in (head + middle + b'","x":1}}', head + middle + b'"}}', head + middle):
        result = parse_or_error(codec, message)
        if isinstance(result, InboundEvent) and result.kind == AUDIO:
            decode_or_error(codec.decode_audio, result.data)


@FUZZ
@given(data=st.data(), compact=st.booleans(), form=wire_forms)
def test_near_valid_browser_envelopes(data, compact, form):
    """control / assistant_streaming / event envelopes with mistyped or missing parts: the right event or OTHER."""
    kind = data.draw(st.sampled_from(["control", "assistant_streaming", "event", "stop", "Event", ""]) | any_text)
    stt = st.fixed_dictionaries({"is_final": maybe(st.booleans()), "content": maybe(any_text)}).map(present)
    payload = st.fixed_dictionaries({"event_type": maybe(st.just("stt_partial")), "type": maybe(st.just("user")),
                                     "status": maybe(st.just("completed")), "content": maybe(any_text),
                                     "data": maybe(stt)}).map(present)
    frame = present({"type": kind, "action": data.draw(maybe(st.just("audio_stop"))), "payload": data.draw(maybe(payload))})
    result = parse_or_error(BrowserCodec(), as_wire(dumps(frame, compact), form))
    assert isinstance(result, InboundEvent), (frame, result)  # a str type is always an event
    assert result.kind == browser_kind(frame), (frame, result)
    if result.kind == OTHER:
        assert result.data == kind


def browser_kind(frame: dict) -> str:
    payload = frame["payload"] if isinstance(frame.get("payload"), dict) else {}
    if frame["type"] == "control" and frame.get("action") == "audio_stop":
        return STOP_AUDIO
    if frame["type"] == "assistant_streaming":
        return ASSISTANT_TEXT
    if frame["type"] == "event" and payload.get("event_type") == "stt_partial":
        stt = payload["data"] if isinstance(payload.get("data"), dict) else {}
        return TRANSCRIPT_FINAL if stt.get("is_final") else TRANSCRIPT_PARTIAL
    if frame["type"] == "event" and payload.get("type") == "user" and payload.get("status") == "completed":
        return TRANSCRIPT_FINAL
    return OTHER


@FUZZ
@given(data=st.data(), compact=st.booleans(), form=wire_forms)
def test_near_valid_control_events(data, compact, form):
    """ACS StopAudio / DtmfData and Twilio clear / mark / stop with junk around them."""
    name = data.draw(st.sampled_from(["acs", "twilio"]))
    kinds = ["StopAudio", "stopAudio", "DtmfData", "Mystery"] if name == "acs" else ["clear", "mark", "stop", "Clear", "dtmf"]
    kind = data.draw(st.sampled_from(kinds))
    junk = st.dictionaries(any_text.filter(lambda key: key.lower() not in ("kind", "event")), json_values, max_size=4)
    frame = {KIND_KEY[name]: kind} | data.draw(junk)
    result = parse_or_error(CODECS[name](), as_wire(dumps(frame, compact), form))
    expected = {"stopaudio": STOP_AUDIO} if name == "acs" else {"clear": STOP_AUDIO, "mark": MARK}
    assert isinstance(result, InboundEvent)
    assert result.kind == expected.get(kind.lower() if name == "acs" else kind, OTHER), (frame, result)


# -- 2. decode_audio / decode_payload ------------------------------------------------------------------
def reference_decode(name: str, raw: bytes) -> np.ndarray:
    return mulaw_decode(raw) if name == "twilio" else np.frombuffer(raw, dtype="<i2")


@FUZZ
@given(payload=b64ish | st.binary(max_size=200) | any_text.map(lambda text: as_wire(text, "bytes"))
       | st.binary(max_size=200).map(bytearray))
@example(payload="!!!not base64!!!")
@example(payload=b"\xff")
def test_decode_audio_of_arbitrary_payloads(codec, payload):
    decode_or_error(codec.decode_audio, payload)


@FUZZ
@given(raw=st.binary(max_size=400), as_text=st.booleans())
def test_decode_audio_of_real_base64(codec, raw, as_text):
    """Well-formed base64 decodes to exactly its samples; only odd-length PCM16 is a ProtocolError."""
    encoded = base64.b64encode(raw)
    result = decode_or_error(codec.decode_audio, encoded.decode() if as_text else encoded)
    if codec.sample_width == 2 and len(raw) % 2:
        assert isinstance(result, ProtocolError)
    else:
        assert isinstance(result, np.ndarray) and result.tobytes() == reference_decode(codec.name, raw).tobytes()


@FUZZ
@given(payload=st.binary(max_size=400))
def test_decode_payload_of_arbitrary_bytes(codec, payload):
    decode_or_error(codec.decode_payload, payload)


@FUZZ
@given(pcm=st.binary(max_size=3000).map(lambda b: b[:len(b) // 2 * 2]))
def test_decode_payload_round_trips_our_own_payloads(codec, pcm):
    for payload in codec.encode_payloads(pcm):
        samples = decode_or_error(codec.decode_payload, payload)
        expected = reference_decode(codec.name, codec.payload_audio(payload))
        assert isinstance(samples, np.ndarray) and samples.tobytes() == expected.tobytes()


# -- 3. FrameReader -----------------------------------------------------------------------------------
class ChunkedSocket:
    """A socket whose recv hands out the stream in chunks of the given sizes (cycled), then b"" for EOF."""

    def __init__(self, data: bytes, sizes: list[int]) -> None:
        self.data, self.sizes, self.position, self.calls, self.eofs = data, sizes, 0, 0, 0

    def recv(self, n: int) -> bytes:
        assert n > 0
        size = min(n, self.sizes[self.calls % len(self.sizes)])
        self.calls += 1
        chunk = self.data[self.position:self.position + size]
        self.position += len(chunk)
        if not chunk:
            self.eofs += 1
            assert self.eofs == 1, "recv called again after EOF: the reader would spin on a closed socket"
        return chunk


chunk_sizes = st.lists(st.integers(1, 9) | st.integers(10, 70_000), min_size=1, max_size=6)


def read_all(reader: FrameReader, stream_size: int) -> tuple[list[tuple[int, bytes]], Exception]:
    """Every message until the reader raises; each returned message consumed at least a 2-byte header."""
    messages = []
    while True:
        try:
            opcode, payload = reader.read()
        except (ConnectionClosed, websocket.WebSocketProtocolException) as exc:
            return messages, exc
        assert isinstance(opcode, int) and 0 <= opcode <= 0xF and isinstance(payload, bytes)
        messages.append((opcode, payload))
        assert len(messages) <= stream_size // 2, "more messages than the stream holds frames"


def server_frame(opcode: int, payload: bytes, fin: bool = True, masked: bool = False) -> bytes:
    """A server frame encoded by websocket-client's reference ABNF (masked only to test the tolerance)."""
    return ABNF(int(fin), 0, 0, 0, opcode, int(masked), payload).format()


@FUZZ_IO
@given(stream=st.binary(max_size=600), sizes=chunk_sizes)
@example(stream=b"\x81\x7f" + (2**63).to_bytes(8, "big"), sizes=[1])
@example(stream=b"\x81\x7e\xff", sizes=[1])
@example(stream=b"\x00\x05hello\x80\x01!", sizes=[3])  # a continuation frame with nothing before it
def test_reader_on_arbitrary_bytes(stream, sizes):
    sock = ChunkedSocket(stream, sizes)
    messages, end = read_all(FrameReader(sock), len(stream))
    assert sum(len(p) for _, p in messages) <= len(stream)
    if isinstance(end, ConnectionClosed):
        assert sock.position == len(stream) and sock.eofs == 1  # only the end of the stream ends it


# a frame with arbitrary flags and opcode (reserved, stray continuations, fragmented control frames)
wild_frames = st.builds(lambda first, payload, masked: bytes([first]) + server_frame(0, payload, masked=masked)[1:],
                        st.integers(0, 255), st.binary(max_size=140), st.booleans())


@FUZZ_IO
@given(frames=st.lists(wild_frames, max_size=8), sizes=chunk_sizes, tail=st.binary(max_size=12))
def test_reader_on_wild_but_well_delimited_frames(frames, sizes, tail):
    stream = b"".join(frames) + tail
    messages, end = read_all(FrameReader(ChunkedSocket(stream, sizes)), len(stream))
    assert len(messages) <= len(frames) + len(tail) // 2
    # the stream's end, or broken fragmentation (a stray continuation, a message inside another) said as such
    assert isinstance(end, ConnectionClosed) or len(tail) >= 2 or "fragmented" in str(end) or "continue" in str(end), end


payload_sizes = st.integers(min_value=0, max_value=200) | st.sampled_from([0, 1, 125, 126, 127, 200, 65535, 65536, 70_000])


@st.composite
def frame_script(draw):
    """Data messages (possibly fragmented, control frames between the fragments) and control frames: the
    wire bytes, and the messages a reader must return in order."""
    wire, expected = [], []
    rng = random.Random(draw(st.integers(0, 2**32)))
    for _ in range(draw(st.integers(0, 6))):
        masked = draw(st.booleans())
        if draw(st.integers(0, 3)) == 0:
            opcode = draw(st.sampled_from([OPCODE_PING, OPCODE_PONG, OPCODE_CLOSE]))
            payload = rng.randbytes(draw(st.integers(0, 125)))
            wire.append(server_frame(opcode, payload, masked=masked))
            expected.append((opcode, payload))
            continue
        opcode, payload = draw(st.sampled_from([OPCODE_TEXT, OPCODE_BINARY])), rng.randbytes(draw(payload_sizes))
        cuts = sorted(draw(st.lists(st.integers(0, len(payload)), max_size=3)))
        pieces = [payload[a:b] for a, b in zip([0] + cuts, cuts + [len(payload)])]
        for i, piece in enumerate(pieces):
            last = i == len(pieces) - 1
            wire.append(server_frame(opcode if i == 0 else OPCODE_CONT, piece, fin=last, masked=masked))
            if not last and draw(st.booleans()):
                ping = rng.randbytes(draw(st.integers(0, 20)))
                wire.append(server_frame(OPCODE_PING, ping))
                expected.append((OPCODE_PING, ping))
        expected.append((opcode, payload))
    return b"".join(wire), expected


@FUZZ_IO
@given(script=frame_script(), sizes=chunk_sizes, cut=st.integers(0, 40))
def test_reader_returns_exactly_the_messages_sent(script, sizes, cut):
    """Any chunking of a valid stream gives back exactly its messages, control frames in between; a stream
    cut short gives the whole messages before the cut, then ConnectionClosed."""
    stream, expected = script
    messages, end = read_all(FrameReader(ChunkedSocket(stream, sizes)), len(stream))
    assert messages == expected and isinstance(end, ConnectionClosed)
    if stream and cut:
        truncated = stream[:max(0, len(stream) - cut)]
        messages, end = read_all(FrameReader(ChunkedSocket(truncated, sizes)), len(truncated))
        assert messages == expected[:len(messages)] and isinstance(end, ConnectionClosed)
        assert len(messages) < len(expected) or not expected


@FUZZ_IO
@given(size=st.integers(MAX_MESSAGE + 1, 2**64 - 1), masked=st.booleans())
def test_reader_refuses_oversized_frames_before_reading_them(size, masked):
    header = bytes([0x81, 0x7F | (0x80 if masked else 0)]) + size.to_bytes(8, "big")
    sock = ChunkedSocket(header, [len(header)])
    with pytest.raises(websocket.WebSocketProtocolException):
        FrameReader(sock).read()
    assert sock.eofs == 0


# -- 4. the call's receive loop against a misbehaving peer on a real socket -------------------------------
# tests/test_generator_and_faults.py already runs whole calls against tests/misbehaving_agent.py (bad JSON,
# unknown kinds, binary frames, bad base64, a close mid-turn) through Locust; this drives the same receive
# loop with hypothesis-chosen frame sequences, cheaply: a socket pair, no server process, no Locust.
class Observer:
    def __init__(self) -> None:
        self.counts: Counter = Counter()
        self.errors: list[tuple[str, str]] = []

    def metric(self, group, name, ms, error=None) -> None: ...

    def value(self, name, value) -> None: ...

    def count(self, name, amount=1) -> None:
        self.counts[name] += amount

    def error(self, kind, message) -> None:
        self.errors.append((kind, message))

    def lateness(self, ms) -> None: ...


class PeerSocket:
    """What CallSession's receiver uses of a websocket-client socket: the raw socket, and send for pongs."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock, self.sent = sock, []

    def send(self, data, opcode=OPCODE_TEXT) -> None:
        self.sent.append((opcode, data))

    def close(self, timeout=None) -> None:
        self.sock.close()


def silent_audio(name: str, frames: int) -> str:
    return base64.b64encode((b"\xff" if name == "twilio" else b"\x00\x00") * 80 * frames).decode()


def audio_frame(name: str, payload: str, compact: bool) -> str:
    frame = {"acs": {"kind": "AudioData", "audioData": {"data": payload}},
             "twilio": {"event": "media", "media": {"payload": payload}},
             "browser": {"type": "audio_data", "data": payload}}[name]
    return dumps(frame, compact)


def peer_frame(name: str):
    """(what, opcode, payload): what the receive loop must make of the frame."""
    not_an_object = st.text(max_size=60).filter(lambda text: not _is_json_object(text))
    no_kind = st.dictionaries(st.text(max_size=10).filter(lambda key: key.lower() not in ("kind", "event", "type")),
                              json_values, max_size=4).map(json.dumps)
    too_deep = st.builds(nested, st.integers(900, 5000), st.sampled_from("[{"))
    no_audio = st.builds(lambda n, compact: audio_frame(name, "A" * (4 * n + 1), compact), st.integers(0, 50), st.booleans())
    silence = st.builds(lambda n, compact: audio_frame(name, silent_audio(name, n), compact), st.integers(0, 8), st.booleans())
    mystery = st.integers(0, 999).map(lambda n: json.dumps({KIND_KEY[name]: f"Mystery{n}"}))

    def text(what: str, strategy):
        return st.tuples(st.just(what), st.just(OPCODE_TEXT), strategy.map(str.encode))

    return st.one_of(
        st.tuples(st.just("malformed"), st.just(OPCODE_BINARY), st.binary(max_size=60)),
        text("malformed", not_an_object), text("malformed", no_kind), text("malformed", too_deep),
        text("malformed", no_audio),  # audio that is no audio: decoded, and refused
        text("silent", silence), text("unexpected", mystery),
        st.tuples(st.just("ping"), st.just(OPCODE_PING), st.binary(max_size=20)),
    )


def _is_json_object(text: str) -> bool:
    try:
        return isinstance(json.loads(text), dict)
    except (ValueError, RecursionError):
        return False


def fragmented(opcode: int, payload: bytes, cuts: list[int]) -> bytes:
    if opcode >= OPCODE_CLOSE:
        return server_frame(opcode, payload)
    cuts = sorted(min(c, len(payload)) for c in cuts)
    pieces = [payload[a:b] for a, b in zip([0] + cuts, cuts + [len(payload)])]
    last = len(pieces) - 1
    return b"".join(server_frame(opcode if i == 0 else OPCODE_CONT, piece, fin=i == last) for i, piece in enumerate(pieces))


@pytest.mark.parametrize("name", list(CODECS))
@settings(FUZZ_IO, max_examples=100)  # per protocol; each example is a socket pair and a thread
@given(data=st.data(), close_frame=st.booleans())
def test_receive_loop_counts_every_bad_frame_and_survives(name, data, close_frame):
    frames = data.draw(st.lists(peer_frame(name), max_size=10))
    cuts = st.lists(st.integers(0, 200), max_size=2)  # where a text or binary message is split into fragments
    wire = b"".join(fragmented(opcode, payload, data.draw(cuts)) for _, opcode, payload in frames)
    if close_frame:
        wire += server_frame(OPCODE_CLOSE, (1011).to_bytes(2, "big") + b"gone mid-turn")
    server, client = socket.socketpair()
    client.settimeout(10)
    peer = threading.Thread(target=lambda: (server.sendall(wire), server.shutdown(socket.SHUT_WR)), daemon=True)
    observer, ws = Observer(), PeerSocket(client)
    session = CallSession(ws, CODECS[name](), CallPlan(turns=[]), observer)
    clip = Clip("fuzz", "caller", "", 16000, 0, 0, 0, b"")
    session.current = Turn(0, clip, speech_start_at=0.0, speech_end_at=0.0)  # mid-turn, the reply not yet audible
    peer.start()
    try:
        session._receive_loop()  # returns once the peer closes; any exception fails the test
    finally:
        peer.join(10)
        server.close()
        client.close()
    what = Counter(kind for kind, _, _ in frames)
    assert observer.counts["malformed_frames"] == what["malformed"], (observer.errors, frames)
    assert sum(kind == "protocol" for kind, _ in observer.errors) == what["malformed"]
    assert sum(kind == "unexpected" for kind, _ in observer.errors) == what["unexpected"]
    assert [sent for _, sent in ws.sent] == [payload for kind, _, payload in frames if kind == "ping"]  # each ping ponged
    assert session.current.first_audible_at is None  # silence is never the agent's answer
    assert session.closed and session.result.dropped
    reason = "server closed the socket (code 1011)" if close_frame else "receive failed: ConnectionClosed"
    assert reason in session.result.failure
