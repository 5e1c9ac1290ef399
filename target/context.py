"""Process-wide state shared by the REST routes and media sockets (one instance per app)."""

from __future__ import annotations

import random
from dataclasses import asdict, dataclass

from target.agent_audio import AgentClip, load_agent_clips
from target.ground_truth import TruthStore
from target.latency import LatencyModel
from target.llm_slots import LlmSlots
from target.recognizer import Recognizer
from target.relay import RelayHub
from target.sessions import SessionStore
from target.settings import Settings


@dataclass
class Counters:
    """Monotonic error/fault counters reported by the health endpoint."""

    malformed_frames: int = 0
    redis_errors: int = 0
    dropped_sockets: int = 0
    injected_http_errors: int = 0
    relay_dropped: int = 0
    db_pool_acquires: int = 0
    db_pool_waits: int = 0  # reads that found every connection busy and had to wait
    db_pool_wait_ms_max: int = 0
    db_pool_timeouts: int = 0

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


class AppContext:
    """Settings, latency model, LLM slots, truth store, sessions, relay, counters, reply clips and the
    fixture recognizer of one target."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.counters = Counters()
        self.latency = LatencyModel(settings)
        self.fault_rng = random.Random(settings.seed + 1)
        self.slots = LlmSlots(settings.llm_slots)
        self.truths = TruthStore(settings.public())
        self.clips: list[AgentClip] = load_agent_clips(settings.audio_manifest, settings.agent_frame_ms)
        self.recognizer = Recognizer.from_manifest(settings.audio_manifest)  # fixture utterances by fingerprint
        self.hub = RelayHub(self.counters)
        self.sessions = SessionStore(settings.redis_url, self.counters, self.hub, settings)
        self.active_calls = 0
        self.calls_total = 0
