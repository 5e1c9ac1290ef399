"""The receiving side of a CallSession: it reads the agent's frames and stamps the current turn, answers
and times WebSocket pings, and notices the socket closing. Latencies are anchored to the sender's
schedule (docs/design.md (Metrics)):

    voice_loop        = first audible agent frame - scheduled end of the caller's speech
    stt_first_partial = first partial transcript   - scheduled start of the caller's speech
    stt_final         = final transcript           - scheduled end of the caller's speech
    barge_in          = StopAudio/clear/audio_stop (or the agent's audio stopping) - scheduled start
                        of an utterance that interrupts the agent
"""

from __future__ import annotations

import time

import gevent
import websocket

from audio.pcm import pcm16_rms
from protocols.frame_io import OPCODE_CLOSE, OPCODE_PING, OPCODE_PONG, OPCODE_TEXT, FrameReader
from protocols.media import ASSISTANT_TEXT, AUDIO, MARK, OTHER, STOP_AUDIO, TRANSCRIPT_FINAL, TRANSCRIPT_PARTIAL, MediaCodec, ProtocolError
from voice.call_plan import CallPlan
from voice.call_result import ANSWERED, UNANSWERED, CallObserver, CallResult, Turn
from voice.jitter import PlayoutStats


class CallReceiver:
    """The receiver and pinger greenlets of a CallSession (its base class), and the reply's measurements."""

    ws: websocket.WebSocket
    codec: MediaCodec
    plan: CallPlan
    observer: CallObserver
    result: CallResult
    current: Turn | None
    closed: bool
    hanging_up: bool
    _pings: dict[bytes, float]

    # -- the reply ------------------------------------------------------------------------------
    def _reply_done(self, turn: Turn) -> bool:
        if turn.mark_seen:
            return True
        return time.perf_counter() - (turn.last_agent_audio_at or turn.first_audible_at) > self.plan.reply_gap_s

    def _turn_unanswered(self, turn: Turn) -> None:
        turn.outcome = UNANSWERED
        reason = f"no audible agent audio within {self.plan.turn_timeout_s:g} s of the end of speech"
        self.result.failure = reason
        self.observer.metric("voice", "voice_loop", self.plan.turn_timeout_s * 1000.0, reason)
        if turn.awaiting_stop:
            self.observer.metric("voice", "barge_in", self.plan.turn_timeout_s * 1000.0, "the agent never stopped talking")

    def _check_audio_stopped(self, turn: Turn) -> None:
        """Barge-in without a stop message: the interrupted reply's audio simply stopped arriving."""
        now = time.perf_counter()
        last = turn.old_audio_last_at
        if now < turn.speech_start_at or (last is not None and now - last <= self.plan.reply_gap_s):
            return
        turn.awaiting_stop = False
        if last is None or last < turn.speech_start_at:  # nothing to interrupt: not the agent's failure
            self.observer.count("barge_in_too_late")
            return
        turn.stopped_at = last
        self.observer.metric("voice", "barge_in", (last - turn.speech_start_at) * 1000.0)

    def _finish_reply(self, turn: Turn) -> None:
        """Playback figures of a reply, once it is over; on a socket that shows the caller's transcripts, an
        answered turn without them is a failed stt_first_partial / stt_final."""
        if self.codec.carries_transcripts and turn.outcome == ANSWERED and turn.first_audible_at is not None:
            if turn.first_partial_at is None:
                self.observer.metric("voice", "stt_first_partial", (turn.first_audible_at - turn.speech_start_at) * 1000.0,
                                     "no partial transcript of the caller in this turn")
            if turn.final_at is None:
                self.observer.metric("voice", "stt_final", max(0.0, turn.voice_loop_ms),
                                     "no final transcript of the caller in this turn")
        playout, turn.playout = turn.playout, None
        if playout is None or playout.frames < 2:
            return
        self.observer.metric("voice", "audio_jitter", playout.jitter_ms)
        if playout.underruns:
            self.observer.count("audio_underruns", playout.underruns)
        if (factor := playout.real_time_factor) is not None:
            self.observer.value("agent_real_time_factor", factor)

    # -- receiver -------------------------------------------------------------------------------
    def _receive_loop(self) -> None:
        codec = self.codec
        reader = FrameReader(self.ws.sock)
        while True:
            try:
                opcode, data = reader.read()
            except (websocket.WebSocketException, OSError) as exc:
                self._socket_lost(f"receive failed: {exc.__class__.__name__}")
                return
            now = time.perf_counter()
            if opcode == OPCODE_PONG:
                sent = self._pings.pop(data, None)
                if sent is not None:
                    self.observer.metric("websocket", "ws_ping_rtt", (now - sent) * 1000.0)
                continue
            if opcode == OPCODE_PING:
                self._try_send(data, websocket.ABNF.OPCODE_PONG)
                continue
            if opcode == OPCODE_CLOSE:
                self._socket_lost(f"server closed the socket (code {_close_code(data)})")
                return
            if opcode != OPCODE_TEXT:  # every protocol here answers in JSON text
                self.observer.error("protocol", f"{codec.name}: binary frame where JSON text is expected")
                self.observer.count("malformed_frames")
                continue
            try:
                self._on_event(codec.parse(data), now)
            except ProtocolError as exc:
                self.observer.error("protocol", f"{codec.name}: {exc}")
                self.observer.count("malformed_frames")

    def _on_event(self, event, now: float) -> None:
        turn = self.current
        if turn is None:
            return
        kind = event.kind
        if kind == AUDIO:
            self._on_agent_audio(turn, event, now)
        elif kind == STOP_AUDIO:
            if turn.awaiting_stop and now >= turn.speech_start_at:
                turn.awaiting_stop = False
                turn.stopped_at = now
                self.observer.metric("voice", "barge_in", (now - turn.speech_start_at) * 1000.0)
        elif kind == MARK:
            turn.mark_seen = turn.first_audible_at is not None
        elif kind == TRANSCRIPT_PARTIAL:
            if turn.first_partial_at is None and now >= turn.speech_start_at:
                turn.first_partial_at = now
                self.observer.metric("voice", "stt_first_partial", (now - turn.speech_start_at) * 1000.0)
        elif kind == TRANSCRIPT_FINAL:
            if turn.final_at is None and now >= turn.speech_start_at:
                turn.final_at = now
                turn.transcript = str(event.data or "")
                if now < turn.speech_end_at:
                    self.observer.error("early_final", "final transcript before the scheduled end of speech")
                else:
                    self.observer.metric("voice", "stt_final", (now - turn.speech_end_at) * 1000.0)
        elif kind == ASSISTANT_TEXT:
            turn.assistant_text += str(event.data or "")
        elif kind == OTHER:
            self.observer.error("unexpected", f"{self.codec.name}: unexpected frame {str(event.data)[:40]!r}")

    def _on_agent_audio(self, turn: Turn, event, now: float) -> None:
        if turn.awaiting_stop:
            turn.old_audio_last_at = now  # the interrupted reply, still playing
            return
        if now < turn.speech_start_at:
            return  # the tail of an earlier reply
        turn.last_agent_audio_at = now
        if turn.playout is None:
            turn.playout = PlayoutStats()
        turn.playout.add(now, event.duration_ms)
        if turn.first_audible_at is not None:
            return  # already measured: the cheap path, no decoding
        if pcm16_rms(self.codec.decode_audio(event.data)) < self.plan.audible_rms:
            return  # leading silence counts against the agent
        turn.first_audible_at = now
        if now < turn.speech_end_at:
            self.observer.error("talk_over", "agent audio started before the caller finished speaking")
            return
        self.observer.metric("voice", "voice_loop", turn.voice_loop_ms)

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
                self.observer.metric("websocket", "ws_ping_rtt", (now - sent) * 1000.0,
                                     f"no pong within {self.plan.pong_timeout_s:g} s")

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
            self.observer.error("ws_dropped", reason)


def _close_code(data: bytes) -> int | None:
    return int.from_bytes(data[:2], "big") if len(data) >= 2 else None
