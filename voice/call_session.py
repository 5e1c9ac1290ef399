"""One measured call over an open media WebSocket: the caller's side, protocol-agnostic.

Three greenlets share the socket: the sender (here) streams caller audio on absolute deadlines (speech,
then continuous silence, as a real line does); the receiver and the pinger (voice.call_receiver) parse
the agent's frames and time WebSocket ping/pong, measuring against the sender's schedule.

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

import gevent
import websocket

from protocols.frame_io import OPCODE_BINARY, OPCODE_TEXT, send_data_frame
from protocols.media import MediaCodec
from voice.audio_stream import AudioStream
from voice.call_plan import CallPlan
from voice.call_receiver import CallReceiver
from voice.call_result import ABANDONED, ANSWERED, CUT_BY_HANGUP, CallObserver, CallResult, Turn
from voice.faults import ABRUPT_DISCONNECT, MALFORMED_FRAME, RECONNECT, SKIPPED_CHUNKS, fault_window, malformed_message
from voice.pacer import AudioPacer

MAX_TURNS = 10_000  # bound of a call cycling its turns until its duration
MID_TURN_FAULTS = (SKIPPED_CHUNKS, MALFORMED_FRAME, ABRUPT_DISCONNECT)


class _HangUp(Exception):
    """The planned end of the call (call_duration_s) has come."""


class CallSession(CallReceiver):
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
