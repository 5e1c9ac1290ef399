"""Per-call turn pipeline: VAD -> end of turn -> STT final -> LLM slot -> first token -> TTS -> paced audio.

Exact semantics (the load generator's tests depend on them):
- VAD runs on every received frame at its arrival; the turn ends at the arrival of the frame that
  brings accumulated trailing silence to eot_silence_ms.
- Recognition (target.recognizer): the turn's first speech frames are looked up by fingerprint; a
  fixture utterance gives the transcript (the browser's final transcript envelope carries it) and its
  words pick the reply (a topical clip, e.g. emergency -> "emergency services"); typed text picks the
  reply the same way. Unknown audio: transcript "caller speech N s" and the round-robin default reply.
- After end of turn: stt_final delay (the session context is read through the bounded pool meanwhile) ->
  final transcript -> wait for an LLM slot (llm_queue_ms) ->
  llm_ttft -> first token (browser: assistant text streams word by word) -> tts_first_byte (+ stall_ms)
  -> the agent clip, agent_frame_ms frames on absolute deadlines from the first frame.
- Barge-in: caller speech totalling barge_in_min_ms of consecutive frames while agent audio is being
  sent stops it at once (protocol stop message) and becomes the next turn. Speech between end of turn
  and first agent audio cancels the pending reply and starts a new turn.
Stage delays are chained on absolute deadlines, so timer lateness does not accumulate.
"""

from __future__ import annotations

import asyncio
import binascii
import time
from typing import TYPE_CHECKING, Any

import numpy as np
from starlette.websockets import WebSocket, WebSocketDisconnect

from target.agent_audio import AgentClip, choose_reply
from target.ground_truth import CallTruth, TurnTruth, utc_now_iso
from target.recognizer import MAX_RECOGNIZE_FRAMES, reply_topic
from target.vad import Endpointer, SpeechRun, VadEvent
from audio.pcm import pcm16_rms

if TYPE_CHECKING:
    from target.context import AppContext

PARTIAL_INTERVAL_S = 0.3
MAX_PARTIALS = 2000  # 10 minutes of continuous speech
MAX_HISTORY = 100
DROP_WINDOW_S = (0.5, 5.0)

perf = time.perf_counter


def decode_base64_audio(data: object) -> bytes | None:
    """A frame's base64 audio payload, or None when it is missing or not strict base64 (a malformed frame)."""
    if not isinstance(data, str):
        return None
    try:
        return binascii.a2b_base64(data, strict_mode=True)
    except (binascii.Error, ValueError):
        return None


async def sleep_until(deadline: float) -> None:
    """Sleep until perf_counter() reaches `deadline` (a few re-checks for early timer wake-ups)."""
    for _ in range(4):
        remaining = deadline - perf()
        if remaining <= 0.0002:
            return
        await asyncio.sleep(remaining)


class MediaSender:
    """Outbound messages of one media socket; each protocol overrides what it has."""

    protocol = ""
    streams_text = False  # browser: transcripts and assistant words are sent to the caller

    def __init__(self, ws: WebSocket) -> None:
        self.ws = ws
        self.open = True
        self.call_id = ""
        self.session_id = ""

    def bind(self, call_id: str, session_id: str) -> None:
        self.call_id, self.session_id = call_id, session_id

    async def send(self, text: str) -> bool:
        """Send one text frame; False (and the sender marked closed) when the socket is gone."""
        if not self.open:
            return False
        try:
            await self.ws.send_text(text)
            return True
        except (RuntimeError, OSError, WebSocketDisconnect):
            self.open = False
            return False

    async def close(self, code: int) -> None:
        if self.open:
            self.open = False
            try:
                await self.ws.close(code)
            except (RuntimeError, OSError, WebSocketDisconnect):
                pass

    def audio_frame(self, clip: AgentClip, index: int) -> str:
        raise NotImplementedError

    async def stop_audio(self) -> None:
        """Barge-in: tell the caller to drop queued agent audio."""

    async def reply_done(self, turn: int) -> None:
        """After a reply's last frame (Twilio: mark)."""

    async def partial(self, text: str) -> None:
        """Partial transcript (browser only)."""

    async def final(self, text: str) -> None:
        """Final user transcript (browser only)."""

    async def assistant_text(self, text: str) -> None:
        """Next streamed assistant word(s) (browser only)."""


class Call:
    """One media connection's state machine; the media module feeds it frames as they arrive."""

    def __init__(self, ctx: AppContext, sender: MediaSender, path: str) -> None:
        s = ctx.settings
        self.ctx = ctx
        self.sender = sender
        self.path = path
        self.t0 = perf()  # the media socket was accepted just before this
        self.truth: CallTruth | None = None
        self.threshold = s.vad_threshold
        self.endpointer = Endpointer(s.eot_silence_ms)
        self.run = SpeechRun(s.barge_in_min_ms)
        self.frame_s = s.agent_frame_ms / 1000.0
        self.turn: TurnTruth | None = None
        self.turn_speech_t = 0.0
        self.speaking = False
        self.reply: asyncio.Task[None] | None = None
        self.words: asyncio.Task[None] | None = None
        self.partials: asyncio.Task[None] | None = None
        self.dropper: asyncio.Task[None] | None = None
        self.history: list[dict[str, str]] = []
        self.ended = False
        self.heard: str | None = None  # the current turn's recognized fixture utterance
        self.hear_frames = 0  # speech frames of the current turn looked up so far

    # -- lifecycle ---------------------------------------------------------------------------------

    def begin(self, call_id: str, session_id: str | None) -> None:
        """Register the call (ground truth, session hash, call_start event) and arm an injected drop."""
        ctx = self.ctx
        truth = ctx.truths.register(call_id, session_id)
        truth.protocol, truth.path, truth.status, truth.media_connected = self.sender.protocol, self.path, "active", True
        self.truth = truth
        self.sender.bind(truth.call_id, truth.session_id)
        ctx.active_calls += 1
        ctx.calls_total += 1
        ctx.sessions.save(truth.call_id, {"created_at": truth.created_at, "protocol": truth.protocol, "status": "active",
                                          "session_id": truth.session_id, "turns": 0})
        self.emit("call_start", {"protocol": truth.protocol, "path": self.path, "session_id": truth.session_id})
        if ctx.settings.ws_drop_rate > 0 and ctx.fault_rng.random() < ctx.settings.ws_drop_rate:
            self.dropper = asyncio.create_task(self._drop(ctx.fault_rng.uniform(*DROP_WINDOW_S)))

    @property
    def started(self) -> bool:
        return self.truth is not None

    async def end(self) -> None:
        """The socket is gone: stop every task of the call and record it as ended."""
        if self.ended:
            return
        self.ended = True
        self.sender.open = False
        for task in (self.reply, self.words, self.partials, self.dropper):
            if task is not None and task is not asyncio.current_task():
                task.cancel()
        if self.truth is None:
            return
        self.ctx.active_calls -= 1
        self.truth.status = "ended"
        self.ctx.sessions.save(self.truth.call_id, {"status": "ended", "ended_at": utc_now_iso()})
        self.emit("call_end", {"turns": self.truth.turn_count})

    async def _drop(self, after_s: float) -> None:
        await asyncio.sleep(after_s)
        self.ctx.counters.dropped_sockets += 1
        self.emit("dropped", {"after_s": round(after_s, 3)})
        await self.sender.close(1011)

    # -- helpers -----------------------------------------------------------------------------------

    def ms(self, t: float) -> float:
        return (t - self.t0) * 1000.0

    def emit(self, event: str, data: dict[str, Any] | None = None) -> None:
        if self.truth is not None:
            self.ctx.sessions.publish(self.truth.call_id, event, data)

    def malformed(self) -> None:
        """Count a frame that could not be used (it is ignored)."""
        self.ctx.counters.malformed_frames += 1
        if self.truth is not None:
            self.truth.malformed_frames += 1

    def dtmf(self, digit: str) -> None:
        if self.truth is not None:
            self.truth.dtmf.append(digit)
        self.emit("dtmf", {"digit": digit})

    # -- inbound audio -----------------------------------------------------------------------------

    async def audio(self, samples: bytes | np.ndarray, n_samples: int, rate: int) -> None:
        """One received frame of PCM16 (bytes or int16 array) at `rate` Hz, processed at its arrival."""
        now = perf()
        speech = pcm16_rms(samples) >= self.threshold
        duration_ms = n_samples * 1000.0 / rate
        if self.speaking:
            if self.run.feed(speech, duration_ms, now):
                await self._barge_in()
                self._hear(samples)
            return
        event = self.endpointer.feed(speech, duration_ms)
        if event is VadEvent.SPEECH_START:
            self._cancel_pending()
            self._start_turn(now, "speech")
        elif event is VadEvent.END_OF_TURN:
            self._end_of_turn(now)
        if speech:
            self._hear(samples)

    def _hear(self, samples: bytes | np.ndarray) -> None:
        """Look a speech frame up until the turn's utterance is recognized (a bounded number of frames)."""
        if self.heard is None and self.hear_frames < MAX_RECOGNIZE_FRAMES:
            self.hear_frames += 1
            self.heard = self.ctx.recognizer.recognize(samples)

    async def text_input(self, text: str) -> None:
        """Typed user input (browser): interrupts any reply, skips STT and goes to LLM + TTS."""
        now = perf()
        if self.speaking:
            await self._stop_reply()
        else:
            self._cancel_pending()
        self.endpointer.reset()
        self.run.reset()
        turn = self._start_turn(now, "text")
        turn.eot_detected_ms = turn.speech_start_ms
        self.reply = asyncio.create_task(self._reply(turn, now, text, with_stt=False))

    # -- turn state machine ------------------------------------------------------------------------

    def _start_turn(self, t: float, kind: str) -> TurnTruth:
        assert self.truth is not None
        turn = self.truth.add_turn(speech_start_ms=self.ms(t), input=kind)
        self.turn, self.turn_speech_t = turn, t
        self.heard, self.hear_frames = None, 0
        if kind == "speech":
            self.emit("speech_start", {"turn": turn.turn, "speech_start_ms": round(turn.speech_start_ms, 3)})
            if self.sender.streams_text:
                self.partials = asyncio.create_task(self._partials(turn, t))
        else:
            self.emit("text_input", {"turn": turn.turn})
        return turn

    def _end_of_turn(self, now: float) -> None:
        turn = self.turn
        assert turn is not None
        turn.eot_detected_ms = self.ms(now)
        self._cancel(self.partials)
        self.emit("end_of_turn", {"turn": turn.turn, "eot_detected_ms": round(turn.eot_detected_ms, 3)})
        spoken_s = max(0.0, now - self.turn_speech_t - self.endpointer.eot_silence_ms / 1000.0)
        transcript = self.heard or f"caller speech {spoken_s:.2f} s"
        self.reply = asyncio.create_task(self._reply(turn, now, transcript, with_stt=True))

    @staticmethod
    def _cancel(task: asyncio.Task[None] | None) -> None:
        if task is not None and not task.done():
            task.cancel()

    def _cancel_pending(self) -> None:
        """Speech (or typed input) before the first agent audio: the pending reply is abandoned."""
        if self.reply is not None and not self.reply.done() and self.turn is not None:
            self._cancel(self.reply)
            self._cancel(self.words)
            self.reply = self.words = None
            self.turn.cancelled = True
            self.emit("reply_cancelled", {"turn": self.turn.turn})
            self._turn_finished(self.turn)
        self._cancel(self.partials)

    async def _stop_reply(self) -> None:
        """Stop the reply being spoken: cancel it, send the protocol's stop message, record barge_in_ms."""
        turn = self.turn
        self._cancel(self.reply)
        self._cancel(self.words)
        self.reply = self.words = None
        self.speaking = False
        await self.sender.stop_audio()
        if turn is not None:
            turn.barge_in_ms = self.ms(perf())
            self.emit("barge_in", {"turn": turn.turn, "barge_in_ms": round(turn.barge_in_ms, 3)})
            self._turn_finished(turn)

    async def _barge_in(self) -> None:
        started_at = self.run.started_at or perf()
        self.run.reset()
        await self._stop_reply()
        self.endpointer.start()
        self._start_turn(started_at, "speech")

    def _turn_finished(self, turn: TurnTruth) -> None:
        """Persist the turn: session hash gets turn count, chat history and the last turn's truth."""
        assert self.truth is not None
        if turn.transcript:
            self.history.append({"role": "user", "content": turn.transcript})
        if turn.first_audio_sent_ms is not None and turn.agent_clip is not None:
            clip = next((c for c in self.ctx.clips if c.id == turn.agent_clip), None)
            if clip is not None:
                self.history.append({"role": "assistant", "content": clip.text})
        del self.history[:-MAX_HISTORY]
        self.ctx.sessions.save(self.truth.call_id, {"turns": self.truth.turn_count, "history": self.history,
                                                    "last_turn": turn.as_dict()})

    # -- reply ---------------------------------------------------------------------------------------

    async def _reply(self, turn: TurnTruth, eot_t: float, transcript: str, with_stt: bool) -> None:
        ctx, s = self.ctx, self.ctx.settings
        clip = choose_reply(ctx.clips, turn.turn, reply_topic(transcript))
        turn.agent_clip, turn.agent_speech_start_ms = clip.id, clip.speech_start_ms
        # the session context is read through the bounded pool while STT finishes, as an agent overlaps them
        context = asyncio.create_task(ctx.sessions.read_context(self.truth.call_id))
        stt = ctx.latency.draw("stt_final") if with_stt else 0.0
        turn.modelled["stt_final"] = stt
        await sleep_until(eot_t + stt / 1000.0)
        turn.stt_final_ms = self.ms(perf())
        turn.transcript = transcript
        await self.sender.final(transcript)
        self.emit("transcript_final", {"turn": turn.turn, "content": transcript})

        await context  # the call's context must be in hand before the LLM: a starved pool delays it here
        ttft = ctx.latency.draw("llm_ttft")
        turn.modelled["llm_ttft"] = ttft
        queued_at = perf()
        await ctx.slots.acquire(ttft / 1000.0 + s.llm_reply_tokens / s.llm_tokens_per_s)
        acquired = perf()
        turn.llm_queue_ms = (acquired - queued_at) * 1000.0
        first_token = acquired + ttft / 1000.0
        await sleep_until(first_token)
        turn.llm_first_token_ms = self.ms(perf())
        self.emit("llm_first_token", {"turn": turn.turn, "llm_queue_ms": round(turn.llm_queue_ms, 3)})
        if self.sender.streams_text:
            self.words = asyncio.create_task(self._stream_words(clip, first_token, s.llm_tokens_per_s))

        tts = ctx.latency.draw("tts_first_byte")
        turn.modelled["tts_first_byte"] = tts
        tts_at = first_token + tts / 1000.0
        await sleep_until(tts_at)
        turn.tts_first_byte_ms = self.ms(perf())
        if s.stall_ms:
            await sleep_until(tts_at + s.stall_ms / 1000.0)
        await self._play(turn, clip)

    async def _play(self, turn: TurnTruth, clip: AgentClip) -> None:
        """Send the clip in real time: frame k at first_frame_time + k * agent_frame_ms."""
        sender = self.sender
        self.speaking = True
        self.run.reset()
        first = perf()
        turn.first_audio_sent_ms = self.ms(first)
        self.emit("agent_audio_start", {"turn": turn.turn, "clip": clip.id,
                                        "eot_to_first_audio_ms": round(turn.eot_to_first_audio_ms or 0.0, 3)})
        for index in range(clip.n_frames):
            if index:
                await sleep_until(first + index * self.frame_s)
            if not await sender.send(sender.audio_frame(clip, index)):
                return
            turn.last_audio_sent_ms = self.ms(perf())
        self.speaking = False
        await sender.reply_done(turn.turn)
        self.emit("agent_audio_end", {"turn": turn.turn, "last_audio_sent_ms": round(turn.last_audio_sent_ms or 0.0, 3)})
        self._turn_finished(turn)

    async def _stream_words(self, clip: AgentClip, first_token: float, tokens_per_s: float) -> None:
        interval = 1.0 / tokens_per_s
        for index, word in enumerate(clip.words):
            await sleep_until(first_token + index * interval)
            await self.sender.assistant_text(word if index == 0 else " " + word)

    async def _partials(self, turn: TurnTruth, speech_t: float) -> None:
        """Browser partial transcripts: first after stt_partial, then every 300 ms while speech lasts."""
        delay = self.ctx.latency.draw("stt_partial")
        turn.modelled["stt_partial"] = delay
        due = speech_t + delay / 1000.0
        for _ in range(MAX_PARTIALS):
            await sleep_until(due)
            if self.turn is not turn or not self.endpointer.in_speech or turn.eot_detected_ms is not None:
                return
            now = perf()
            if turn.first_partial_ms is None:
                turn.first_partial_ms = self.ms(now)
            await self.sender.partial(f"caller speech {now - speech_t:.2f} s")
            due += PARTIAL_INTERVAL_S
