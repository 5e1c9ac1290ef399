"""The one metric registry: every metric voiceload records or judges, declared once.

Each `MetricSpec` says the metric's name, unit, group, what it means (the sentence the report, the web UI
and the README show), whether its p95 is charted over time and its default SLO. config.DEFAULT_SLOS, the
report's units, the renderers, the web UI tab and the README table (`python -m metric_registry` prints
it) all read it. A new metric is one entry here. Pure: no Locust, no settings (verdict thresholds live in
config.VerdictThresholds only).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Stat = Literal["p50", "p90", "p95", "p99", "mean", "max", "value"]
Op = Literal["<", "<=", ">", ">="]

# Display order of the groups (the web UI tab sorts its rows by it; unknown groups go last).
GROUPS: tuple[str, ...] = ("voice", "flow", "websocket", "relay", "crosscheck", "openai", "speech", "redis",
                           "cosmos", "api", "rate")
# Request types of the backend users: their failures make the verdict's backend error rate.
BACKEND_GROUPS = frozenset({"redis", "openai", "speech", "cosmos"})
# Priorities of the consultation flows (scenarios.catalog.Priority): each has its own voice_loop[<priority>].
PRIORITIES: tuple[str, ...] = ("emergency", "urgent", "routine")


@dataclass(frozen=True)
class SloDefault:
    """A metric's default SLO target (YAML `slo:` entries override it by metric)."""

    target: float
    description: str  # the SLO row's short definition
    stat: Stat = "p95"
    op: Op = "<="
    on_miss: Literal["warn", "fail"] = "warn"


@dataclass(frozen=True)
class MetricSpec:
    """One metric: what it is called, measured in, grouped under and means; charted; its default SLO."""

    name: str
    unit: str
    group: str
    meaning: str
    charted: bool = False
    slo: SloDefault | None = None


def _ms(name: str, group: str, meaning: str, slo: SloDefault | None = None, charted: bool = False) -> MetricSpec:
    return MetricSpec(name, "ms", group, meaning, charted, slo)


def _rate(name: str, meaning: str, slo: SloDefault | None = None) -> MetricSpec:
    return MetricSpec(name, "%", "rate", meaning, False, slo)


def _by_priority(priority: str) -> MetricSpec:
    slo = SloDefault(700, "voice_loop of emergency consultation flows") if priority == "emergency" else None
    # its own SLO row, so slow emergencies cannot hide behind fast routine calls; make it stricter in YAML
    return _ms(f"voice_loop[{priority}]", "voice", f"voice_loop of the turns of {priority} consultation flows "
               "(every turn's voice_loop again, by the scenario's priority)", slo)


# In pipeline order (socket, speech to text, LLM, text to speech, the whole loop, backends, rates); the
# default SLOs come out in this order too.
METRICS: tuple[MetricSpec, ...] = (
    _ms("ws_handshake", "websocket", "TCP connect + TLS + HTTP upgrade of a media or relay WebSocket, until the "
        "101 response is read", SloDefault(150, "TCP + TLS + WebSocket upgrade", op="<")),
    _ms("ws_ping_rtt", "websocket", "WebSocket ping control frame -> matching pong, once a second during each call "
        "(no pong within 5 s is a failure)", SloDefault(250, "WebSocket ping -> pong", op="<")),
    _ms("frame_send_lateness", "websocket", "actual send time - scheduled deadline of every outbound audio frame "
        "(generator health; Locust's row shows each call's worst frame)"),
    _ms("call_setup", "voice", "start of a call (the start-call REST request, where the caller makes one) -> its "
        "media socket open, handshake included"),
    _ms("stt_first_partial", "voice", "scheduled start of the caller's speech -> first partial transcript (browser "
        "socket; SpeechUser: the Speech SDK's first recognizing event); an answered turn without one is a failure",
        SloDefault(400, "speech start -> first partial transcript", op="<")),
    _ms("stt_final", "voice", "scheduled end of the caller's speech -> final transcript (browser socket; SpeechUser: "
        "the first recognized event with text); an answered turn without one is a failure",
        SloDefault(1000, "speech end -> final transcript", op="<")),
    _ms("llm_ttft", "openai", "streamed chat completion request sent -> first content token (LLMUser); HTTP errors, "
        "429s and empty streams are failures", SloDefault(600, "LLM request -> first token")),
    _ms("llm_token_interval", "openai", "time between consecutive content chunks of a streamed chat completion"),
    _ms("llm_total", "openai", "streamed chat completion request sent -> its stream's end"),
    MetricSpec("llm_tokens_per_s", "tokens/s", "openai", "content chunks after the first / time from the first to "
               "the last chunk, per completion"),
    _ms("tts_first_byte", "speech", "synthesis request -> first audio chunk (the Speech SDK's first synthesizing "
        "event); canceled, empty or late syntheses are failures",
        SloDefault(200, "TTS request -> first audio byte", op="<")),
    _ms("tts_total", "speech", "synthesis request -> synthesis completed"),
    _ms("voice_loop", "voice", "scheduled end of the caller's speech (t0 + the frame where the clip's speech "
        "ends, as encoded on the wire) -> first agent audio frame whose energy is above the speech threshold; a "
        "turn with no audible answer within the turn timeout is a failure",
        SloDefault(700, "caller's scheduled end of speech -> first audible agent audio"), charted=True),
    *(_by_priority(priority) for priority in PRIORITIES),
    _ms("barge_in", "voice", "scheduled start of an utterance that interrupts the agent -> StopAudio / clear / "
        "audio_stop, or the agent's audio stopping"),
    _ms("audio_jitter", "voice", "RFC 3550 interarrival jitter of the agent's audio against its own playback clock, "
        "per reply; gaps of more than a frame are counted as audio_underruns"),
    MetricSpec("agent_real_time_factor", "x", "voice", "audio received / wall time it took, per reply (1 is real "
               "time; above 1 the agent sends faster than it plays)"),
    _ms("client_minus_server", "crosscheck", "per answered turn: our first-audible time minus the server's own "
        "(its call-metrics endpoint), i.e. network + transport"),
    _ms("relay_event_lag", "relay", "relay dashboard socket: receive time - the event's own timestamp (meaningful "
        "when both clocks are in sync)"),
    _ms("api_response_time", "api", "every REST request of the run (all HTTP request rows merged)",
        SloDefault(150, "REST API response time")),
    # not in the seeds: the per-turn session write and conversation upsert sit on the caller's path
    _ms("redis_hset", "redis", "per-turn HSET of the session's chat history and context (RedisUser)",
        SloDefault(20, "per-turn Redis session write (HSET)")),
    _ms("redis_hgetall", "redis", "HGETALL of the session when a RedisUser starts"),
    _ms("redis_subscribe", "redis", "SUBSCRIBE to the session's event channel when a RedisUser starts"),
    _ms("redis_publish", "redis", "per-turn PUBLISH of a turn event on the session's channel"),
    _ms("redis_set", "redis", "per-turn SET of the call -> session mapping, with a one-hour TTL"),
    _ms("redis_get", "redis", "per-turn GET of the call -> session mapping"),
    _ms("redis_pubsub_delivery", "redis", "PUBLISH -> the user's own subscriber receiving the event (same process, "
        "same clock)"),
    _ms("cosmos_upsert", "cosmos", "per-turn upsert of the session's conversation document (CosmosUser)",
        SloDefault(50, "per-turn Cosmos conversation upsert")),
    _ms("cosmos_read", "cosmos", "per-turn point read of the session document just written (a stale one is "
        "counted as cosmos_stale_results)"),
    _ms("cosmos_query", "cosmos", "per-turn parameterized query of the caller's sessions"),
    _ms("cosmos_setup", "cosmos", "account client + database + container created if missing, once per process "
        "(a failure is tried again on the next turn)"),
    MetricSpec("cosmos_request_charge", "RU", "cosmos", "request units charged per Cosmos operation "
               "(x-ms-request-charge)"),
    _rate("success_rate", "calls that succeeded, % of the calls that ended (calls cut off by the run's end are not "
          "judged); in a run that placed no calls, requests that succeeded, % of every request",
          SloDefault(95, "calls that succeeded, % of the calls that ended (requests, in a run that placed no calls)",
                     stat="value", op=">=")),
    _rate("critical_error_rate", "calls that failed, % of the calls that ended",
          SloDefault(0.5, "calls that failed, % of the calls that ended", stat="value", on_miss="fail")),
    _rate("error_rate", "requests that failed, % of every request (REST, handshakes, pings, backend calls)",
          SloDefault(5, "requests that failed, % of every request (REST, handshakes, pings, backend calls)",
                     stat="value")),
    _rate("ws_drop_rate", "media WebSockets that closed or broke before the caller hung up, % of those opened"),
    _rate("backend_error_rate", "backend requests (redis, openai, speech, cosmos) that failed, % of those made"),
)

_BY_NAME: dict[str, MetricSpec] = {m.name: m for m in METRICS}
if len(_BY_NAME) != len(METRICS) or any(m.group not in GROUPS for m in METRICS):
    raise ValueError("metric_registry: a metric is declared twice or its group is not in GROUPS")


def names() -> tuple[str, ...]:
    """Every declared metric name, in registry order."""
    return tuple(_BY_NAME)


def spec(name: str) -> MetricSpec | None:
    """The metric's declaration, or None for a name the registry does not know."""
    return _BY_NAME.get(name)


def meaning(name: str) -> str:
    """What the metric means ('' for an unknown name)."""
    found = _BY_NAME.get(name)
    return found.meaning if found else ""


def unit(name: str) -> str:
    """The metric's unit; an unknown name is taken as milliseconds."""
    found = _BY_NAME.get(name)
    return found.unit if found else "ms"


def group(name: str) -> str:
    """The group the metric is recorded under ('' for an unknown name)."""
    found = _BY_NAME.get(name)
    return found.group if found else ""


def charted() -> tuple[str, ...]:
    """Metrics whose p95 per interval goes into the timeline and its charts."""
    return tuple(m.name for m in METRICS if m.charted)


def default_slos() -> tuple[tuple[str, SloDefault], ...]:
    """(metric, default SLO) of every metric that has one, in registry order."""
    return tuple((m.name, m.slo) for m in METRICS if m.slo is not None)


def slo_text(slo: SloDefault | None) -> str:
    """'p95 <= 700' or '>= 95 %', or a dash."""
    if slo is None:
        return "–"
    return f"{slo.op} {slo.target:g} %" if slo.stat == "value" else f"{slo.stat} {slo.op} {slo.target:g}"


def markdown_table() -> str:
    """The README's table under "What is measured" (run `python -m metric_registry` to print it)."""
    lines = ["| metric | unit | group | default SLO | definition |", "|---|---|---|---|---|"]
    lines += [f"| `{m.name}` | {m.unit} | {m.group} | {slo_text(m.slo)} | {m.meaning} |" for m in METRICS]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(markdown_table(), end="")
