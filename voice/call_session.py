"""One measured call over an open media WebSocket: the caller's side, protocol-agnostic.

Three greenlets share the socket: the sender streams caller audio on absolute deadlines (speech,
then continuous silence, as a real line does), the receiver parses the agent's frames, and the
pinger times WebSocket ping/pong. Every latency is anchored to the schedule (DESIGN.md, Metrics):

    voice_loop        = first audible agent frame - scheduled end of the caller's speech
    stt_first_partial = first partial transcript   - scheduled start of the caller's speech
    stt_final         = final transcript           - scheduled end of the caller's speech
    barge_in          = StopAudio/clear/audio_stop (or the agent's audio stopping) - scheduled start
                        of an utterance that interrupts the agent

Audio goes out as the codec's real-time frames or as fixed chunks (voice.audio_stream); the speech anchors
follow the messages actually sent. With `call_duration_s` the caller cycles its turns until then and hangs
up (a turn cut by that is not a failure); with `faults` it injects faults on purpose (voice.faults) and may
end the session early asking for a new call (`CallResult.continue_from`).
"""

from __future__ import annotations

import math
import socket
import sys
import time
from dataclasses import dataclass, field
from typing import Protocol

import gevent
import websocket

from protocols.frame_io import OPCODE_BINARY, OPCODE_CLOSE, OPCODE_PING, OPCODE_PONG, OPCODE_TEXT, FrameReader, send_data_frame
from protocols.media import ASSISTANT_TEXT, AUDIO, MARK, OTHER, STOP_AUDIO, TRANSCRIPT_FINAL, TRANSCRIPT_PARTIAL, MediaCodec, ProtocolError
from audio.pcm import DEFAULT_SPEECH_RMS, pcm16_rms
from voice.audio_stream import AudioStream
from voice.faults import ABRUPT_DISCONNECT, MALFORMED_FRAME, RECONNECT, SKIPPED_CHUNKS, FaultInjector, fault_window, malformed_message
from audio.fixtures import Clip
from voice.jitter import PlayoutStats
from voice.pacer import AudioPacer


class CallObserver(Protocol):
    """Where a call's measurements go (Locust + the exact recorder in a run; a list in a test)."""

    def metric(self, group: str, name: str, ms: float, error: str | None = None) -> None: ...

    def value(self, name: str, value: float) -> None: ...

    def count(self, name: str, amount: int = 1) -> None: ...

    def error(self, kind: str, message: str) -> None: ...

    def lateness(self, ms: float) -> None: ...


@dataclass
class TurnScript:
    """One caller utterance. `barge_in_after_ms`: start it that long after the agent's previous reply
    became audible, interrupting it. `dtmf`: a keypad digit to send after the agent answers.
    `think_time_ms`: silence before it (after the previous reply; on the first turn, after connecting);
    None: the plan's think_time_ms between turns, nothing before the first."""

    clip: Clip
    barge_in_after_ms: float | None = None
    dtmf: str | None = None
    think_time_ms: int | None = None


@dataclass
class CallPlan:
    """How the caller behaves: what it says, how long it waits, how it decides the agent is done."""

    turns: list[TurnScript]
    turn_timeout_s: float = 8.0  # from the scheduled end of speech to the first audible reply
    reply_gap_s: float = 0.6  # no agent audio for this long after it started = the reply is over
    think_time_ms: int = 300  # silence between the end of a reply and the next utterance
    ping_interval_s: float = 1.0
    pong_timeout_s: float = 5.0
    audible_rms: float = DEFAULT_SPEECH_RMS
    max_call_s: float = 300.0
    max_reply_s: float = 60.0  # a reply still going this long after it became audible is talked over
    call_duration_s: float = 0.0  # > 0: cycle the turns until this long after the socket opened, then hang up
    chunk_bytes: int = 0  # > 0 or chunk_interval_ms > 0: fixed chunks instead of the codec's frames
    chunk_interval_ms: float = 0.0
    faults: FaultInjector | None = None  # faults injected on purpose, per turn


# Turn outcomes
ANSWERED = "answered"
UNANSWERED = "unanswered"
CUT_BY_HANGUP = "cut_by_hangup"  # the planned hang-up (call_duration_s) came first: not a failure
ABANDONED = "abandoned"  # an injected abrupt disconnect cut it off: not a failure
MAX_TURNS = 10_000  # bound of a call cycling its turns until its duration


@dataclass
class Turn:
    index: int
    clip: Clip
    speech_start_at: float  # scheduled (perf_counter s)
    speech_end_at: float
    barge_in: bool = False  # this utterance interrupts the previous reply
    awaiting_stop: bool = False  # barge-in sent, the interrupted reply not yet stopped
    old_audio_last_at: float | None = None
    first_audible_at: float | None = None
    last_agent_audio_at: float | None = None
    first_partial_at: float | None = None
    final_at: float | None = None
    stopped_at: float | None = None
    mark_seen: bool = False
    fault: str | None = None  # injected on purpose in this turn
    outcome: str | None = None  # ANSWERED, UNANSWERED, CUT_BY_HANGUP or ABANDONED once known
    assistant_text: str = ""
    transcript: str = ""  # the final transcript of this utterance, where the protocol shows it
    playout: PlayoutStats | None = None

    @property
    def voice_loop_ms(self) -> float | None:
        return None if self.first_audible_at is None else (self.first_audible_at - self.speech_end_at) * 1000.0


@dataclass
class CallResult:
    turns: list[Turn] = field(default_factory=list)
    answered_turns: int = 0
    cut_turns: int = 0  # cut short by the planned hang-up
    abandoned_turns: int = 0  # cut off by an injected abrupt disconnect
    frames_sent: int = 0
    dropped: bool = False  # the socket closed before we hung up
    failure: str | None = None
    faults: list[str] = field(default_factory=list)  # injected on purpose
    continue_from: int | None = None  # an injected disconnect or reconnect: the next turn, on a new call

    setup_failed: bool = False  # the call never got its media socket
    checks_failed: str | None = None  # the caller's own checks of the call (a consultation's keywords) failed: why

    @property
    def completed(self) -> bool:
        """What the caller experienced was a working call (see `call_failure`)."""
        return call_failure(self) is None

    def absorb(self, later: "CallResult") -> "CallResult":
        """Add the session that continued this call after a reconnect."""
        self.turns += later.turns
        self.answered_turns += later.answered_turns
        self.cut_turns += later.cut_turns
        self.abandoned_turns += later.abandoned_turns
        self.frames_sent += later.frames_sent
        self.dropped = self.dropped or later.dropped
        self.failure = self.failure or later.failure
        self.setup_failed = self.setup_failed or later.setup_failed
        self.faults += later.faults
        self.continue_from = later.continue_from
        return self


# Why a call failed, from the caller's side (counted as calls_failed_<kind>)
SETUP_FAILED = "setup"  # the call never got its media socket
DROPPED = "dropped"  # the socket closed or broke before the caller hung up
UNANSWERED_TURN = "unanswered"  # a turn got no audible answer within its timeout
NEVER_HEARD = "never_heard"  # the caller hung up as planned without having heard the agent once
CHECKS_FAILED = "checks"  # a consultation's own checks (expected keywords) failed
OTHER_FAILURE = "other"


@dataclass(frozen=True)
class CallFailure:
    kind: str
    reason: str


def call_failure(result: CallResult) -> CallFailure | None:
    """Why the caller would call this call a failure, or None: it was set up, its socket was not dropped,
    every turn was answered audibly within its timeout (turns cut by the planned hang-up or an injected
    disconnect excepted), and the caller heard the agent at least once."""
    if result.setup_failed:
        return CallFailure(SETUP_FAILED, result.failure or "call setup failed")
    if result.dropped:
        return CallFailure(DROPPED, result.failure or "the socket closed mid-call")
    if any(turn.outcome == UNANSWERED for turn in result.turns):
        return CallFailure(UNANSWERED_TURN, result.failure or "a turn got no audible answer")
    if result.failure is not None:
        return CallFailure(OTHER_FAILURE, result.failure)
    if undecided := [turn.index for turn in result.turns if turn.outcome is None]:
        return CallFailure(OTHER_FAILURE, f"turn {undecided[0]} ended neither answered nor hung up on")
    if result.checks_failed is not None:
        return CallFailure(CHECKS_FAILED, result.checks_failed)
    if result.answered_turns == 0:
        return CallFailure(NEVER_HEARD, f"hung up after {len(result.turns)} turn(s) without hearing the agent once")
    return None


class _HangUp(Exception):
    """The planned end of the call (call_duration_s) has come."""


class CallSession:
    """Drives one call; `run()` blocks the calling greenlet until the caller hangs up."""

    def __init__(self, ws: websocket.WebSocket, codec: MediaCodec, plan: CallPlan, observer: CallObserver,
                 first_turn: int = 0, hangup_at: float | None = None) -> None:
        """`first_turn`: where in the plan's turns this session starts (a reconnected call goes on);
        `hangup_at`: when to hang up (perf_counter s; default: call_duration_s after this session starts)."""
        self.ws = ws
        self.codec = codec
        self.plan = plan
        self.observer = observer
        self.first_turn = first_turn
        self.hangup_at = hangup_at
        self.stream = AudioStream(codec, plan.chunk_bytes, plan.chunk_interval_ms)
        self.result = CallResult()
        self.current: Turn | None = None
        self.closed = False
        self.hanging_up = False
        self._pings: dict[bytes, float] = {}
        self._opcode = OPCODE_BINARY if codec.binary_frames else OPCODE_TEXT
        self._hangup_index = sys.maxsize  # the first message due at or after hangup_at
        self._last_sent: tuple[int, float] = (0, 0.0)  # (index, lateness ms) of the last audio message sent

    # -- public ---------------------------------------------------------------------------------
    def run(self) -> CallResult:
        receiver = gevent.spawn(self._receive_loop)
        pinger = gevent.spawn(self._ping_loop)
        try:
            self._send_loop()
        except _HangUp:
            self._cut_by_hangup()
        except (websocket.WebSocketException, OSError) as exc:
            self._socket_lost(f"send failed: {exc.__class__.__name__}")
        finally:
            self.hanging_up = True
            pinger.kill(block=False)
            if self.current is not None:
                self._finish_reply(self.current)
            for message in self.codec.closing_messages():
                self._try_send(message)
            receiver.kill(block=True, timeout=2)
            try:
                self.ws.close(timeout=1)
            except Exception:  # noqa: BLE001 - closing a broken socket may fail in many ways
                pass
            self._expire_pings(final=True)
            self._count_stream()
        return self.result

    # -- sender ---------------------------------------------------------------------------------
    def _send_loop(self) -> None:
        plan, codec, stream = self.plan, self.codec, self.stream
        self.silence = stream.silence
        for message in codec.opening_messages():
            self.ws.send(message, opcode=websocket.ABNF.OPCODE_TEXT)
        pacer = self.pacer = AudioPacer(stream.step_ms)
        if self.hangup_at is None and plan.call_duration_s > 0:
            self.hangup_at = pacer.t0 + plan.call_duration_s
        cycling = self.hangup_at is not None
        if cycling:
            self._hangup_index = max(0, math.ceil((self.hangup_at - pacer.t0) / pacer.frame_s))
            self._send_frame = self._send_frame_or_hang_up  # the check stays off the common path
        self.call_deadline = math.inf if cycling else pacer.t0 + plan.max_call_s
        turns = plan.turns
        index = 0
        previous: Turn | None = None
        for number in range(self.first_turn, MAX_TURNS if cycling else len(turns)):  # 0-based place in the plan
            script = turns[number % len(turns)]
            following = turns[(number + 1) % len(turns)] if cycling or number + 1 < len(turns) else None
            if previous is None and script.think_time_ms:  # before the session's first utterance
                for _ in range(int(script.think_time_ms / stream.step_ms)):
                    index = self._send_frame(pacer, index, self.silence)
            barge = script.barge_in_after_ms is not None and previous is not None and previous.first_audible_at is not None
            if barge:  # keep the line open until the moment we interrupt
                interrupt_at = previous.first_audible_at + script.barge_in_after_ms / 1000.0
                while pacer.deadline(index) < interrupt_at:
                    index = self._send_frame(pacer, index, self.silence)
            start = pacer.deadline(index)
            first, end = stream.speech_messages(script.clip, plan.audible_rms)
            turn = Turn(number + 1, script.clip, start + first * pacer.frame_s, start + end * pacer.frame_s,
                        barge_in=barge, awaiting_stop=barge)
            fault = plan.faults.roll(can_reconnect=following is not None) if plan.faults is not None else None
            if previous is not None:
                self._finish_reply(previous)
            self.result.turns.append(turn)
            self.current = turn
            payloads = stream.clip_payloads(script.clip)
            if fault in MID_TURN_FAULTS:
                index = self._send_faulty_utterance(pacer, index, payloads, turn, fault, first, end)
                if index < 0:
                    self._continue_after(number)
                    return
            else:
                for payload in payloads:
                    index = self._send_frame(pacer, index, payload)
            interrupt_next = following is not None and following.barge_in_after_ms is not None
            index = self._await_reply(pacer, index, turn, until_audible_only=interrupt_next)
            if index < 0:
                return
            turn.outcome = ANSWERED
            self.result.answered_turns += 1
            if script.dtmf and (tone := codec.dtmf(script.dtmf)) is not None:
                self.ws.send(tone, opcode=websocket.ABNF.OPCODE_TEXT)
                self.observer.count("dtmf_sent")
            if fault == RECONNECT and self._continue_after(number):
                self._injected(turn, RECONNECT)  # a clean hang-up (run() says goodbye) and a new call
                return
            if not interrupt_next:
                think_ms = plan.think_time_ms if following is None or following.think_time_ms is None else following.think_time_ms
                for _ in range(int(think_ms / stream.step_ms)):
                    index = self._send_frame(pacer, index, self.silence)
            previous = turn

    def _send_faulty_utterance(self, pacer: AudioPacer, index: int, payloads: list[bytes], turn: Turn, fault: str,
                               speech_first: int, speech_end: int) -> int:
        """The utterance with `fault` injected mid-speech; -1 after an abrupt disconnect."""
        at, skip = fault_window(len(payloads), speech_first, speech_end, fault)
        for number, payload in enumerate(payloads):
            if number == at:
                if fault == ABRUPT_DISCONNECT:
                    self._disconnect_abruptly(turn)
                    return -1
                if fault == MALFORMED_FRAME:
                    send_data_frame(self.ws, malformed_message(self.codec.binary_frames), self._opcode)
                self._injected(turn, fault)
            if at <= number < at + skip:
                index += 1  # not sent, but the schedule goes on
                continue
            index = self._send_frame(pacer, index, payload)
        return index

    def _disconnect_abruptly(self, turn: Turn) -> None:
        """Close the socket mid-turn without a goodbye (no stop message, no close frame)."""
        self._injected(turn, ABRUPT_DISCONNECT)
        turn.outcome = ABANDONED
        self.result.abandoned_turns += 1
        self.hanging_up = True  # the receiver's error that follows is ours, not the agent's doing
        self.closed = True  # nothing more is sent: run() says no goodbye
        sock = self.ws.sock
        try:
            if sock is not None:
                sock.shutdown(socket.SHUT_RDWR)  # FIN now; wakes the receiver
        except OSError:
            pass
        self.ws.shutdown()

    def _continue_after(self, number: int) -> bool:
        """Ask for a new call carrying on after turn `number` (0-based), if any turn is left; True if so."""
        left = time.perf_counter() < self.hangup_at if self.hangup_at is not None else number + 1 < len(self.plan.turns)
        if left:
            self.result.continue_from = number + 1
        return left

    def _injected(self, turn: Turn, kind: str) -> None:
        turn.fault = kind
        self.result.faults.append(kind)
        self.observer.count("simulated_errors")
        self.observer.count(f"simulated_{kind}")

    def _cut_by_hangup(self) -> None:
        """The planned hang-up came mid-turn: a turn already answered audibly counts as answered, else as cut."""
        turn = self.current
        if turn is None or turn.outcome is not None:
            return
        if turn.first_audible_at is not None:
            turn.outcome = ANSWERED
            self.result.answered_turns += 1
        else:
            turn.outcome = CUT_BY_HANGUP
            self.result.cut_turns += 1
            self.observer.count("turns_cut_by_hangup")

    def _count_stream(self) -> None:
        """The audio this session sent: messages, wire bytes, audio ms, and the wall time it took: from the
        stream's start (message 0 is due at once) to one interval after the last message's actual send, so
        real time gives a ratio of 1."""
        sent = self.result.frames_sent
        if not sent:
            return
        stream = self.stream
        last, last_late = self._last_sent
        wall_ms = (last + 1) * stream.step_ms + last_late
        self.observer.count("audio_chunks_sent", sent)
        self.observer.count("audio_bytes_sent", sent * stream.message_bytes)
        self.observer.count("audio_ms_sent", round(sent * stream.message_ms))
        self.observer.count("audio_stream_ms", round(wall_ms))

    def _await_reply(self, pacer: AudioPacer, index: int, turn: Turn, until_audible_only: bool) -> int:
        """Send silence until the agent's reply is over (or just audible); -1 when the call must end. The turn
        timeout bounds the wait for the answer to begin, not for it to end: a reply longer than max_reply_s
        is talked over, as a caller would."""
        give_up_at = min(turn.speech_end_at + self.plan.turn_timeout_s, self.call_deadline)
        while True:
            if turn.awaiting_stop:
                self._check_audio_stopped(turn)
            heard = turn.first_audible_at
            if heard is not None and (until_audible_only or self._reply_done(turn)):
                return index
            if self.closed:
                return -1
            due = pacer.deadline(index)
            if heard is None and due >= give_up_at:
                self._turn_unanswered(turn)
                return -1
            if heard is not None and (due >= heard + self.plan.max_reply_s or due >= self.call_deadline):
                return index
            index = self._send_frame(pacer, index, self.silence)

    def _send_frame(self, pacer: AudioPacer, index: int, payload: bytes) -> int:
        if self.closed:
            raise websocket.WebSocketConnectionClosedException("closed by the server")
        lateness = pacer.wait_for(index)
        send_data_frame(self.ws, self.codec.frame(payload, index), self._opcode)
        self.observer.lateness(lateness)
        self.result.frames_sent += 1
        self._last_sent = (index, lateness)
        return index + 1

    def _send_frame_or_hang_up(self, pacer: AudioPacer, index: int, payload: bytes) -> int:
        """_send_frame of a call with a planned end: hang up instead of sending the first message due then."""
        if index >= self._hangup_index:
            pacer.wait_for(index)
            raise _HangUp
        return CallSession._send_frame(self, pacer, index, payload)

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


MID_TURN_FAULTS = (SKIPPED_CHUNKS, MALFORMED_FRAME, ABRUPT_DISCONNECT)


def _close_code(data: bytes) -> int | None:
    return int.from_bytes(data[:2], "big") if len(data) >= 2 else None
