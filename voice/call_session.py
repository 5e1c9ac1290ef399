"""One measured phone call over an open media WebSocket: the caller's side, protocol-agnostic.

Three greenlets share the socket: the sender streams caller audio on absolute deadlines
(speech, then continuous silence, as a real phone line does), the receiver parses the agent's
frames and detects the first *audible* agent frame of each turn, and the pinger times
WebSocket ping/pong. Every latency is anchored to the schedule (DESIGN.md, Metrics):

    voice_loop = arrival of the first audible agent frame - (t0 + turn start + clip speech end)
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable

import gevent
import websocket

from protocols.media import AUDIO, MARK, STOP_AUDIO, MediaCodec, ProtocolError
from voice.audio import DEFAULT_SPEECH_RMS, pcm16_rms
from voice.fixtures import Clip, encoded_payloads, silence_payload, wire_speech_bounds
from voice.pacer import AudioPacer

# on_metric(group, name, ms, error) -- error is None for a good sample, else a short reason
MetricSink = Callable[[str, str, float, "str | None"], None]
ErrorSink = Callable[[str, str], None]


@dataclass
class CallPlan:
    """How the caller behaves: what it says, how long it waits, how it decides the agent is done."""

    clips: list[Clip]
    turn_timeout_s: float = 8.0  # from the scheduled end of speech to the first audible reply
    reply_gap_s: float = 0.6  # no agent audio for this long after it started = the reply is over
    think_time_ms: int = 300  # silence between the end of the reply and the next utterance
    ping_interval_s: float = 1.0
    pong_timeout_s: float = 5.0
    audible_rms: float = DEFAULT_SPEECH_RMS
    max_call_s: float = 300.0


@dataclass
class Turn:
    index: int
    clip: Clip
    speech_start_at: float  # scheduled (perf_counter s)
    speech_end_at: float
    first_audible_at: float | None = None
    last_agent_audio_at: float | None = None
    mark_seen: bool = False

    @property
    def voice_loop_ms(self) -> float | None:
        return None if self.first_audible_at is None else (self.first_audible_at - self.speech_end_at) * 1000.0


@dataclass
class CallResult:
    turns: list[Turn] = field(default_factory=list)
    answered_turns: int = 0
    frames_sent: int = 0
    dropped: bool = False  # the socket closed before we hung up
    failure: str | None = None

    @property
    def completed(self) -> bool:
        return self.failure is None and self.answered_turns == len(self.turns)


class CallSession:
    """Drives one call; `run()` blocks the calling greenlet until the caller hangs up."""

    def __init__(self, ws: websocket.WebSocket, codec: MediaCodec, plan: CallPlan,
                 on_metric: MetricSink, on_error: ErrorSink, on_lateness: Callable[[float], None]) -> None:
        self.ws = ws
        self.codec = codec
        self.plan = plan
        self.on_metric = on_metric
        self.on_error = on_error
        self.on_lateness = on_lateness
        self.result = CallResult()
        self.current: Turn | None = None
        self.closed = False
        self.hanging_up = False
        self._pings: dict[bytes, float] = {}

    # -- public ---------------------------------------------------------------------------------
    def run(self) -> CallResult:
        receiver = gevent.spawn(self._receive_loop)
        pinger = gevent.spawn(self._ping_loop)
        try:
            self._send_loop()
        except (websocket.WebSocketException, OSError) as exc:
            self._socket_lost(f"send failed: {exc.__class__.__name__}")
        finally:
            self.hanging_up = True
            pinger.kill(block=False)
            for message in self.codec.closing_messages():
                self._try_send(message)
            receiver.kill(block=True, timeout=2)
            try:
                self.ws.close(timeout=1)
            except Exception:  # noqa: BLE001 - closing a broken socket may fail in many ways
                pass
            self._expire_pings(final=True)
        return self.result

    # -- sender ---------------------------------------------------------------------------------
    def _send_loop(self) -> None:
        plan, codec = self.plan, self.codec
        silence = silence_payload(codec)
        for message in codec.opening_messages():
            self.ws.send(message, opcode=websocket.ABNF.OPCODE_TEXT)
        pacer = AudioPacer(codec.frame_ms)
        frame_s = codec.frame_ms / 1000.0
        call_deadline = pacer.t0 + plan.max_call_s
        index = 0
        for number, clip in enumerate(plan.clips, start=1):
            start = pacer.deadline(index)
            speech_start_ms, speech_end_ms = wire_speech_bounds(codec, clip, plan.audible_rms)
            turn = Turn(number, clip, start + speech_start_ms / 1000.0, start + speech_end_ms / 1000.0)
            self.result.turns.append(turn)
            self.current = turn
            for payload in encoded_payloads(codec, clip):
                index = self._send_frame(pacer, index, payload)
            give_up_at = min(turn.speech_end_at + plan.turn_timeout_s, call_deadline)
            while not self._reply_done(turn):
                if self.closed:
                    return
                if pacer.deadline(index) >= give_up_at:
                    self._turn_unanswered(turn)
                    return
                index = self._send_frame(pacer, index, silence)
            self.result.answered_turns += 1
            for _ in range(int(plan.think_time_ms / 1000.0 / frame_s)):
                index = self._send_frame(pacer, index, silence)

    def _send_frame(self, pacer: AudioPacer, index: int, payload: bytes) -> int:
        if self.closed:
            raise websocket.WebSocketConnectionClosedException("closed by the server")
        lateness = pacer.wait_for(index)
        self.ws.send(self.codec.frame(payload, index), opcode=websocket.ABNF.OPCODE_TEXT)
        self.on_lateness(lateness)
        self.result.frames_sent += 1
        return index + 1

    def _reply_done(self, turn: Turn) -> bool:
        if turn.first_audible_at is None:
            return False
        if turn.mark_seen:
            return True
        return time.perf_counter() - (turn.last_agent_audio_at or turn.first_audible_at) > self.plan.reply_gap_s

    def _turn_unanswered(self, turn: Turn) -> None:
        reason = f"no audible agent audio within {self.plan.turn_timeout_s:g} s of the end of speech"
        self.result.failure = reason
        self.on_metric("voice", "voice_loop", self.plan.turn_timeout_s * 1000.0, reason)

    # -- receiver -------------------------------------------------------------------------------
    def _receive_loop(self) -> None:
        ws, codec = self.ws, self.codec
        while True:
            try:
                opcode, frame = ws.recv_data_frame(True)
            except (websocket.WebSocketException, OSError) as exc:
                self._socket_lost(f"receive failed: {exc.__class__.__name__}")
                return
            now = time.perf_counter()
            if opcode == websocket.ABNF.OPCODE_PONG:
                sent = self._pings.pop(bytes(frame.data), None)
                if sent is not None:
                    self.on_metric("websocket", "ws_ping_rtt", (now - sent) * 1000.0, None)
                continue
            if opcode == websocket.ABNF.OPCODE_CLOSE:
                self._socket_lost(f"server closed the socket (code {_close_code(frame.data)})")
                return
            if opcode not in (websocket.ABNF.OPCODE_TEXT, websocket.ABNF.OPCODE_BINARY):
                continue
            try:
                event = codec.parse(frame.data)
                if event.kind == AUDIO:
                    self._on_agent_audio(event.data, now)
                elif event.kind == MARK and self.current is not None:
                    self.current.mark_seen = self.current.first_audible_at is not None
                elif event.kind == STOP_AUDIO:
                    self.on_error("stop_audio", "agent stopped its audio (barge-in)")
            except ProtocolError as exc:
                self.on_error("protocol", f"{codec.name}: {exc}")

    def _on_agent_audio(self, payload, now: float) -> None:
        turn = self.current
        if turn is None:
            return
        turn.last_agent_audio_at = now
        if turn.first_audible_at is not None or now < turn.speech_start_at:
            return  # already measured (cheap path), or audio from before this turn began
        if pcm16_rms(self.codec.decode_audio(payload)) < self.plan.audible_rms:
            return  # leading silence counts against the agent
        turn.first_audible_at = now
        if now < turn.speech_end_at:
            self.on_error("talk_over", "agent audio started before the caller finished speaking")
            return
        self.on_metric("voice", "voice_loop", turn.voice_loop_ms, None)

    # -- pinger ---------------------------------------------------------------------------------
    def _ping_loop(self) -> None:
        sequence = 0
        while not self.closed and not self.hanging_up:
            gevent.sleep(self.plan.ping_interval_s)
            sequence += 1
            payload = f"vl-{sequence}".encode()
            self._pings[payload] = time.perf_counter()
            if not self._try_send(payload, websocket.ABNF.OPCODE_PING):
                return
            self._expire_pings(final=False)

    def _expire_pings(self, final: bool) -> None:
        now = time.perf_counter()
        for payload, sent in list(self._pings.items()):
            if now - sent > self.plan.pong_timeout_s or (final and not self.closed and now - sent > 1.0):
                del self._pings[payload]
                self.on_metric("websocket", "ws_ping_rtt", (now - sent) * 1000.0, f"no pong within {self.plan.pong_timeout_s:g} s")

    # -- helpers ----------------------------------------------------------------------------------
    def _try_send(self, message: bytes, opcode: int = websocket.ABNF.OPCODE_TEXT) -> bool:
        if self.closed:
            return False
        try:
            self.ws.send(message, opcode=opcode)
            return True
        except (websocket.WebSocketException, OSError):
            return False

    def _socket_lost(self, reason: str) -> None:
        if self.closed:
            return
        self.closed = True
        if not self.hanging_up:
            self.result.dropped = True
            self.result.failure = self.result.failure or f"socket closed mid-call: {reason}"
            self.on_error("ws_dropped", reason)


def _close_code(data: bytes) -> int | None:
    return int.from_bytes(data[:2], "big") if len(data) >= 2 else None
