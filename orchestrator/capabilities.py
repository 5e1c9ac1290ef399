"""What the target serves and which backend services are configured, found at preflight before any load,
so a run is judged on what the agent has: its users leave out what is missing instead of counting it as errors.

Endpoints are probed without side effects and compared with the answer to a made-up path, so each server's
own way of saying "no such route" reads as missing (404 mostly; Starlette and FastAPI refuse an upgrade to an
unknown socket with 403). A REST route is asked with OPTIONS (an existing route answers 405, 200, 401, ...),
then with GET when OPTIONS told nothing; nothing is ever POSTed. A WebSocket route gets a bare handshake,
closed at once; a media socket refused like the made-up path is tried once more the way a caller reaches it,
with a call placed by the start-call route (some agents refuse call ids they did not hand out: the one call a
preflight may place). A refusal unlike the made-up path's (401, 400, ...) means the route is there; an error, or a
server that answers every path alike, means we could not tell ("unknown"): the users stay and their failures
are counted. Backend services count as configured by the environment, the YAML config or the local stack,
never guessed from --host.
"""

from __future__ import annotations

import uuid
from dataclasses import asdict, dataclass
from typing import Iterable
from urllib.parse import urlencode

import httpx
import websocket

from config import Endpoint, Settings
from protocols.connection import open_websocket
from users.call_setup import CallSetupError, acs_media_url, call_id_from, random_e164, twiml_stream, twilio_webhook_form

FOUND, MISSING, NOT_CONFIGURED, UNKNOWN = "found", "missing", "not configured", "unknown"
GONE_STATUSES = (404, 410)
PROBE_TIMEOUT_S = 5.0
BACKENDS = ("redis", "llm", "speech", "cosmos")


@dataclass(frozen=True)
class Capability:
    name: str  # a profile endpoint (health, start_call, media_ws, ...) or a backend service (redis, llm, ...)
    status: str  # found | missing | not configured | unknown (could not tell: kept)
    why: str

    @property
    def available(self) -> bool:
        return self.status in (FOUND, UNKNOWN)

    def as_dict(self) -> dict:
        return asdict(self)


def _made_up(prefix: str = "voiceload-probe") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def _rest_status(client: httpx.Client, method: str, url: str) -> int | str:
    try:
        return client.request(method, url, timeout=PROBE_TIMEOUT_S).status_code
    except httpx.HTTPError as exc:
        return exc.__class__.__name__


def probe_rest(client: httpx.Client, base_url: str, name: str, endpoint: Endpoint, nowhere: dict[str, int | str]) -> Capability:
    """OPTIONS, then GET: found when the route answers otherwise than the server answers for a path it cannot
    have (`nowhere`: method -> that answer; usually 404). A path with {call_id} is asked with a made-up id."""
    path = endpoint.path.replace("{call_id}", _made_up())
    answers = []
    for method in ("OPTIONS", "GET"):
        status = _rest_status(client, method, base_url + path)
        if isinstance(status, str):
            return Capability(name, UNKNOWN, f"{method} {endpoint.path}: {status}; kept")
        answers.append(f"{method} {status}")
        if status != nowhere.get(method) and status not in GONE_STATUSES:
            return Capability(name, FOUND, f"{endpoint.method} {endpoint.path} ({', '.join(answers)})")
    if all(isinstance(answer, int) and answer < 400 for answer in nowhere.values()):
        return Capability(name, UNKNOWN, f"{endpoint.method} {endpoint.path}: the server answers any path alike "
                                         f"({', '.join(answers)}); kept")
    return Capability(name, MISSING, f"{endpoint.method} {endpoint.path} answered {', '.join(answers)}, as for a path "
                                     "the server does not have")


def _handshake(url: str, headers: dict[str, str], insecure: bool) -> int | str:
    """101 when the upgrade succeeded (the socket is closed at once), the HTTP status refusing it, or the error."""
    try:
        ws, _ = open_websocket(url, headers, timeout=PROBE_TIMEOUT_S, insecure=insecure)
    except websocket.WebSocketBadStatusException as exc:
        return exc.status_code
    except (websocket.WebSocketException, OSError) as exc:
        return f"{exc.__class__.__name__}: {exc}"[:120]
    try:
        ws.close(timeout=1)
    except (websocket.WebSocketException, OSError):
        pass
    return 101


def probe_websocket(ws_base_url: str, name: str, endpoint: Endpoint, insecure: bool, nowhere: int | str) -> Capability:
    """A handshake with a made-up call id (as the callers send one), closed at once: found when it is accepted,
    or refused otherwise than an upgrade to a path the server cannot have (`nowhere`: Starlette and FastAPI
    answer 403 there, others 404)."""
    call_id = _made_up()
    query = {"acs": {"call_connection_id": call_id}, "browser": {"session_id": call_id, "call_id": call_id}}
    params = query.get(endpoint.protocol)
    url = ws_base_url + endpoint.path + (f"?{urlencode(params)}" if params else "")
    headers = {"x-ms-call-connection-id": call_id} if endpoint.protocol == "acs" else {}
    status = _handshake(url, headers, insecure)
    if isinstance(status, str):
        return Capability(name, UNKNOWN, f"WebSocket {endpoint.path}: {status}; kept")
    if status == 101:
        return Capability(name, FOUND, f"WebSocket {endpoint.path} ({endpoint.protocol})")
    if status == nowhere or status in GONE_STATUSES:
        return Capability(name, MISSING, f"WebSocket {endpoint.path} answered HTTP {status} to the upgrade, as for a "
                                         "path the server does not have")
    return Capability(name, FOUND, f"WebSocket {endpoint.path} is there but answered HTTP {status} to a bare upgrade")


def probe_media_with_a_call(client: httpx.Client, base_url: str, ws_base: str, settings: Settings) -> Capability:
    """The media socket, reached as a caller does: place a call with the start-call route (the one side effect of
    a preflight, and only when an upgrade with a made-up call id was refused as for a path the server does not
    have: an agent may refuse call ids it did not hand out), then handshake with what it answered."""
    profile = settings.profiles[settings.profile]
    media, start = profile.media_ws, profile.start_call
    try:
        if media.protocol == "twilio":
            answer = client.post(base_url + start.path, content=twilio_webhook_form("CA" + uuid.uuid4().hex),
                                 headers={"Content-Type": "application/x-www-form-urlencoded"}, timeout=PROBE_TIMEOUT_S)
            stream = twiml_stream(answer.text) if answer.status_code == 200 else None
            url, headers = (stream[0], {}) if stream and stream[0].startswith(("ws://", "wss://")) else (ws_base + media.path, {})
        else:
            answer = client.post(base_url + start.path, json={"target_number": random_e164()}, timeout=PROBE_TIMEOUT_S)
            url, headers = acs_media_url(ws_base, media.path, call_id_from(answer.json()))
    except (httpx.HTTPError, ValueError, CallSetupError) as exc:
        return Capability("media_ws", MISSING, f"WebSocket {media.path} refused a made-up call, and a real one could not be "
                                               f"placed ({exc.__class__.__name__})")
    status = _handshake(url, headers, settings.insecure)
    if status == 101:
        return Capability("media_ws", FOUND, f"WebSocket {media.path} ({media.protocol}), for a call placed with "
                                             f"{start.method} {start.path} (it refuses made-up call ids)")
    return Capability("media_ws", MISSING, f"WebSocket {media.path} answered {status} to the upgrade, even for a call "
                                           f"placed with {start.method} {start.path}")


def probe_target(base_url: str, settings: Settings) -> list[Capability]:
    """Every endpoint of the profile: found, missing, not in the profile (not configured) or unknown."""
    profile = settings.profiles[settings.profile]
    ws_base = settings.websocket_base_url or _ws_url(base_url)
    found = []
    with httpx.Client(verify=not settings.insecure, follow_redirects=False) as client:
        nowhere_path = "/" + _made_up()
        nowhere = {method: _rest_status(client, method, base_url + nowhere_path) for method in ("OPTIONS", "GET")}
        nowhere_ws = _handshake(ws_base + nowhere_path, {}, settings.insecure)
        for name, endpoint in endpoint_items(profile):
            if endpoint is None:
                found.append(Capability(name, NOT_CONFIGURED, f"profile {settings.profile} has none"))
            elif endpoint.protocol in ("acs", "twilio", "browser", "relay"):
                found.append(probe_websocket(ws_base, name, endpoint, settings.insecure, nowhere_ws))
            else:
                found.append(probe_rest(client, base_url, name, endpoint, nowhere))
        by_name = {c.name: c for c in found}
        if by_name["media_ws"].status == MISSING and by_name["start_call"].status == FOUND:
            found[found.index(by_name["media_ws"])] = probe_media_with_a_call(client, base_url, ws_base, settings)
    return found


def endpoint_items(profile) -> Iterable[tuple[str, Endpoint | None]]:
    for name in type(profile).model_fields:
        if name != "description":
            yield name, getattr(profile, name)


def _ws_url(http_url: str) -> str:
    return "wss://" + http_url.removeprefix("https://") if http_url.startswith("https://") else \
        "ws://" + http_url.removeprefix("http://")


def backend_capabilities(settings: Settings) -> list[Capability]:
    """Which backend services the backend users would load: `settings` as the Locust processes resolve them
    (environment and YAML, plus what the local stack provides)."""
    def state(name: str, configured: bool, where: str, how: str) -> Capability:
        return Capability(name, FOUND, f"configured: {where}") if configured else Capability(name, NOT_CONFIGURED, how)

    speech_where = settings.speech_host or (f"Azure region {settings.speech_region}" if settings.speech_region else "")
    return [
        state("redis", settings.redis_url is not None, "REDIS_URL", "set REDIS_URL (redis:// or rediss://) to load Redis"),
        state("llm", settings.openai_endpoint is not None, settings.openai_endpoint or "",
              "set OPENAI_ENDPOINT (+ OPENAI_API_KEY, OPENAI_DEPLOYMENT for Azure OpenAI) to load an LLM"),
        state("speech", bool(settings.speech_host or (settings.speech_key and settings.speech_region)), speech_where,
              "set SPEECH_HOST (a Speech container) or SPEECH_KEY + SPEECH_REGION to load Azure Speech"),
        state("cosmos", bool(settings.cosmos_endpoint and settings.cosmos_key), settings.cosmos_endpoint or "",
              "set COSMOS_ENDPOINT + COSMOS_KEY to load Cosmos DB"),
    ]


def missing_required(capabilities: list[Capability], required: Iterable[str]) -> list[Capability]:
    """The required capabilities the target lacks (what --require turns into exit 3)."""
    by_name = {c.name: c for c in capabilities}
    return [by_name[name] for name in required if name in by_name and not by_name[name].available]


def absent_endpoints(capabilities: list[Capability]) -> list[str]:
    """Profile endpoints the users must leave out."""
    return [c.name for c in capabilities if c.name not in BACKENDS and c.status == MISSING]


# user-count key -> the capabilities its users need (all of them)
KIND_NEEDS: dict[str, tuple[str, ...]] = {
    "voice_users": ("start_call", "media_ws"), "relay_users": ("relay_ws",), "redis_users": ("redis",),
    "llm_users": ("llm",), "speech_users": ("speech",), "cosmos_users": ("cosmos",),
}
KIND_WORDS = {"api_users": "API user", "voice_users": "phone caller", "browser_users": "browser caller",
              "relay_users": "relay listener", "redis_users": "Redis user", "llm_users": "LLM user",
              "speech_users": "Speech user", "cosmos_users": "Cosmos user", "integration_users": "consultation caller"}


def users_of(kind: str, count: int) -> str:
    """'1 relay listener', '3 phone callers'."""
    return f"{count} {KIND_WORDS[kind]}{'' if count == 1 else 's'}"
CALLER_KINDS = ("voice_users", "browser_users", "integration_users")


def lacking(capabilities: list[Capability], names: Iterable[str]) -> list[Capability]:
    """Those of `names` the run cannot use (missing or not configured)."""
    by_name = {c.name: c for c in capabilities}
    return [by_name[name] for name in names if name in by_name and not by_name[name].available]


def because(missing: list[Capability]) -> str:
    """One reason text: each capability, its status and why."""
    return "; ".join(f"{c.name} {c.status}: {c.why}" for c in missing)


def fit_counts(counts: dict[str, int], capabilities: list[Capability]) -> tuple[dict[str, int], list[str]]:
    """The user counts with every kind whose capability is missing or not configured left out, and one line
    per kind left out. Browser callers call by phone when the agent has no browser socket but a phone line;
    consultation callers take whichever of the two the agent has."""
    fitted, lines = dict(counts), []
    no_phone = lacking(capabilities, KIND_NEEDS["voice_users"])
    no_browser = lacking(capabilities, ("browser_ws",))
    if fitted.get("browser_users") and no_browser:
        moved, fitted["browser_users"] = fitted["browser_users"], 0
        if not no_phone:
            fitted["voice_users"] = fitted.get("voice_users", 0) + moved
            lines.append(f"{users_of('browser_users', moved)} {'calls' if moved == 1 else 'call'} by phone instead: {because(no_browser)}")
        else:
            lines.append(f"not run: {users_of('browser_users', moved)}: {because(no_browser)}")
    for kind, needs in KIND_NEEDS.items():
        if fitted.get(kind) and (short := lacking(capabilities, needs)):
            lines.append(f"not run: {users_of(kind, fitted[kind])}: {because(short)}")
            fitted[kind] = 0
    if fitted.get("integration_users") and no_phone and no_browser:
        lines.append(f"not run: {users_of('integration_users', fitted['integration_users'])}: {because(no_phone + no_browser)}")
        fitted["integration_users"] = 0
    return fitted, lines


def no_call_channel(capabilities: list[Capability]) -> str | None:
    """Why no caller can reach the agent at all (no phone line and no browser socket), or None."""
    no_phone = lacking(capabilities, KIND_NEEDS["voice_users"])
    no_browser = lacking(capabilities, ("browser_ws",))
    return because(no_phone + no_browser) if no_phone and no_browser else None
