"""One typed configuration for voiceload: defaults < YAML file < environment < command line.

Holds the system-under-test address and profile, backend service credentials, run sizing,
the SLO targets and verdict thresholds (docs/design.md, Default SLOs) and the target profiles
(docs/design.md, Target profiles). `load_settings` raises `ConfigError` with one readable line;
callers print it and exit 2. `Settings.redacted()` is the only form that is ever printed.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal, Mapping
from urllib.parse import urlsplit, urlunsplit

import yaml
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator, model_validator

from metric_registry import default_slos

Protocol = Literal["acs", "twilio", "browser", "relay", "http"]


class ConfigError(ValueError):
    """Invalid configuration; the message is one line meant for the user."""


class Endpoint(BaseModel):
    model_config = ConfigDict(extra="forbid")
    path: str
    method: Literal["GET", "POST"] = "GET"
    protocol: Protocol = "http"

    @field_validator("path")
    @classmethod
    def _absolute(cls, path: str) -> str:
        if not path.startswith("/"):
            raise ValueError(f"path must start with '/': {path!r}")
        return path


class TargetProfile(BaseModel):
    """Logical endpoints of one kind of voice agent -> its paths and wire protocols."""

    model_config = ConfigDict(extra="forbid")
    description: str = ""
    health: Endpoint
    docs: Endpoint | None = None
    start_call: Endpoint | None = None
    inbound: Endpoint | None = None
    callbacks: Endpoint | None = None
    call_metrics: Endpoint | None = None  # path contains {call_id}
    media_ws: Endpoint | None = None
    browser_ws: Endpoint | None = None
    relay_ws: Endpoint | None = None


ENDPOINT_NAMES: tuple[str, ...] = tuple(name for name in TargetProfile.model_fields if name != "description")


def _ep(path: str, method: str = "GET", protocol: str = "http") -> Endpoint:
    return Endpoint(path=path, method=method, protocol=protocol)


BUILTIN_PROFILES: dict[str, TargetProfile] = {
    "artagent-v1": TargetProfile(
        description="ART voice agent accelerator (current): ACS media over JSON, browser conversation",
        health=_ep("/api/v1/health"),
        start_call=_ep("/api/v1/calls/initiate", "POST"),
        inbound=_ep("/api/v1/calls/answer", "POST"),
        callbacks=_ep("/api/v1/calls/callbacks", "POST"),
        call_metrics=_ep("/api/v1/metrics/session/{call_id}"),
        media_ws=_ep("/api/v1/media/stream", protocol="acs"),
        browser_ws=_ep("/api/v1/browser/conversation", protocol="browser"),
        relay_ws=_ep("/api/v1/browser/dashboard/relay", protocol="relay"),
    ),
    "rtmedagent": TargetProfile(
        description="RTMedAgent paths from the original load-suite README",
        health=_ep("/health"),
        start_call=_ep("/api/call", "POST"),
        inbound=_ep("/api/call/inbound", "POST"),
        callbacks=_ep("/call/callbacks", "POST"),
        call_metrics=_ep("/api/call/{call_id}/metrics"),
        media_ws=_ep("/ws/call/stream", protocol="acs"),
        browser_ws=_ep("/ws/realtime", protocol="browser"),
        relay_ws=_ep("/ws/relay", protocol="relay"),
    ),
    "twilio-media": TargetProfile(
        description="AI Call Assistant: Twilio webhook + Media Streams (mu-law 8 kHz)",
        health=_ep("/healthcheck"),
        docs=_ep("/docs"),
        start_call=_ep("/calls/inbound", "POST"),
        media_ws=_ep("/audio-stream", protocol="twilio"),
    ),
}


class SloTarget(BaseModel):
    model_config = ConfigDict(extra="forbid")
    metric: str
    stat: Literal["p50", "p90", "p95", "p99", "mean", "max", "value"] = "p95"
    op: Literal["<", "<=", ">", ">="] = "<="
    target: float
    description: str = ""
    on_miss: Literal["warn", "fail"] = "warn"  # what a missed target makes of the run (latencies also fail past the miss factor)


# The default targets are declared with their metrics, in metric_registry.py (one entry per metric).
DEFAULT_SLOS: list[SloTarget] = [
    SloTarget(metric=name, stat=slo.stat, op=slo.op, target=slo.target, description=slo.description,
              on_miss=slo.on_miss) for name, slo in default_slos()
]


class VerdictThresholds(BaseModel):
    """When a missed target turns a run from warn into fail (docs/design.md, Verdict; the levels: docs/verdict.md)."""

    model_config = ConfigDict(extra="forbid")
    fail_success_rate_below: float = Field(80.0, ge=0, le=100)
    fail_latency_miss_factor: float = Field(1.5, ge=1.0)
    fail_ws_drop_pct_above: float = Field(10.0, ge=0, le=100)
    fail_backend_error_pct_above: float = Field(5.0, ge=0, le=100)
    generator_lateness_p99_ms: float = Field(10.0, gt=0)
    generator_cpu_percent: float = Field(90.0, gt=0, le=100)
    generator_cpu_time_fraction: float = Field(0.10, ge=0, le=1)


class Settings(BaseModel):
    """Everything a run needs. Secrets are SecretStr and only ever printed redacted."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    api_base_url: str | None = None
    ws_base_url: str | None = None
    profile: str = "artagent-v1"
    profiles: dict[str, TargetProfile] = Field(default_factory=lambda: dict(BUILTIN_PROFILES))
    absent_endpoints: tuple[str, ...] = Field((), description="endpoints of the profile the target does not serve "
                                              "(found at preflight): every user leaves them out")
    insecure: bool = False

    redis_url: SecretStr | None = None
    redis_pool_size: int = Field(50, gt=0, le=10000)
    openai_endpoint: str | None = None
    openai_api_key: SecretStr | None = None
    openai_deployment: str | None = None
    openai_api_version: str = "2024-10-21"
    openai_model: str = "gpt-4o-mini"
    speech_key: SecretStr | None = None
    speech_region: str | None = None
    speech_host: str | None = None
    cosmos_endpoint: str | None = None
    cosmos_key: SecretStr | None = None

    test_duration: int = Field(60, gt=0, description="seconds")
    max_users: int = Field(500, gt=0, description="a guard against typos: most users one group may run (the comprehensive suite runs 105 callers)")
    users: int | None = Field(None, gt=0)
    spawn_rate: float | None = Field(None, gt=0)
    results_dir: Path = Path("results")
    call_log: Path | None = Field(None, description="append one JSON line per finished call (per-turn timings)")
    flow_scenarios: Path | None = Field(None, description="a scenario YAML file or folder for ConsultationUser (default: scenarios/)")
    flow_channel: Literal["auto", "telephony", "browser"] = Field(
        "auto", description="ConsultationUser's socket: auto uses the browser socket for every third flow when the profile has one")

    turns_per_call: int = Field(2, gt=0, le=50)
    turn_timeout_s: float = Field(8.0, gt=0)
    think_time_ms: int = Field(300, ge=0)
    ping_interval_s: float = Field(1.0, gt=0)
    barge_in_rate: float = Field(0.25, ge=0, le=1, description="share of later turns that interrupt the agent")
    dtmf_rate: float = Field(0.1, ge=0, le=1, description="share of turns followed by a keypad digit")

    slo: list[SloTarget] = Field(default_factory=lambda: list(DEFAULT_SLOS))
    thresholds: VerdictThresholds = Field(default_factory=VerdictThresholds)

    @field_validator("api_base_url", "ws_base_url", "openai_endpoint", "cosmos_endpoint", "speech_host")
    @classmethod
    def _url(cls, value: str | None, info: Any) -> str | None:
        if value is None or value == "":
            return None
        allowed = {"ws_base_url": ("ws", "wss"), "speech_host": ("ws", "wss")}.get(info.field_name, ("http", "https"))
        parts = urlsplit(value)
        if parts.scheme not in allowed or not parts.netloc:
            raise ValueError(f"{value!r} is not a {'/'.join(s + '://' for s in allowed)} URL")
        return value.rstrip("/")

    @field_validator("flow_channel", mode="before")
    @classmethod
    def _channel(cls, value: Any) -> Any:
        return value.strip().lower() if isinstance(value, str) else value

    @field_validator("absent_endpoints", mode="before")
    @classmethod
    def _endpoint_names(cls, value: Any) -> tuple[str, ...]:
        names = tuple(n.strip() for n in value.split(",") if n.strip()) if isinstance(value, str) else tuple(value or ())
        if unknown := [n for n in names if n not in ENDPOINT_NAMES]:
            raise ValueError(f"unknown endpoint {unknown[0]!r} (known: {', '.join(ENDPOINT_NAMES)})")
        return names

    @field_validator("redis_url")
    @classmethod
    def _redis_url(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None or not value.get_secret_value():
            return None
        if urlsplit(value.get_secret_value()).scheme not in ("redis", "rediss", "unix"):
            raise ValueError("must start with redis://, rediss:// or unix://")
        return value

    @model_validator(mode="after")
    def _profile_known(self) -> "Settings":
        if self.profile not in self.profiles:
            raise ValueError(f"unknown profile {self.profile!r} (known: {', '.join(sorted(self.profiles))})")
        if self.users is not None and self.users > self.max_users:
            raise ValueError(f"users {self.users} exceeds MAX_USERS {self.max_users}")
        return self

    # -- derived -------------------------------------------------------------------------------
    @property
    def target_profile(self) -> TargetProfile:
        """The profile, without the endpoints the target was found not to serve (health always stays)."""
        profile = self.profiles[self.profile]
        absent = {name: None for name in self.absent_endpoints if name != "health"}
        return profile.model_copy(update=absent) if absent else profile

    @property
    def websocket_base_url(self) -> str | None:
        """WS_BASE_URL, or the API base URL with http(s) turned into ws(s)."""
        if self.ws_base_url:
            return self.ws_base_url
        if not self.api_base_url:
            return None
        parts = urlsplit(self.api_base_url)
        return urlunsplit(("wss" if parts.scheme == "https" else "ws", parts.netloc, parts.path, "", ""))

    def slo_for(self, metric: str) -> SloTarget | None:
        return next((s for s in self.slo if s.metric == metric), None)

    def redacted(self) -> dict:
        """A printable dict: secrets replaced by '***', passwords in URLs too."""
        data = self.model_dump(mode="json", exclude={"profiles"})
        for name, field in type(self).model_fields.items():
            if data.get(name) and field.annotation in (SecretStr | None, SecretStr):
                data[name] = redact_url(getattr(self, name).get_secret_value()) if name.endswith("_url") else "***"
        data["profiles"] = sorted(self.profiles)
        return data


def redact_url(url: str) -> str:
    """Hide the password (and user name) in a URL such as redis://:pw@host:6379."""
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url
    host = parts.netloc.rsplit("@", 1)[1]
    return urlunsplit((parts.scheme, f"***@{host}", parts.path, parts.query, parts.fragment))


# Environment variable -> settings field (docs/design.md, Configuration; the seed READMEs name these).
ENV_VARS: dict[str, str] = {
    "API_BASE_URL": "api_base_url",
    "WS_BASE_URL": "ws_base_url",
    "VOICELOAD_PROFILE": "profile",
    "REDIS_URL": "redis_url",
    "OPENAI_ENDPOINT": "openai_endpoint",
    "AZURE_OPENAI_ENDPOINT": "openai_endpoint",
    "OPENAI_API_KEY": "openai_api_key",
    "AZURE_OPENAI_API_KEY": "openai_api_key",
    "OPENAI_DEPLOYMENT": "openai_deployment",
    "OPENAI_API_VERSION": "openai_api_version",
    "OPENAI_MODEL": "openai_model",
    "REDIS_POOL_SIZE": "redis_pool_size",
    "SPEECH_KEY": "speech_key",
    "SPEECH_REGION": "speech_region",
    "SPEECH_HOST": "speech_host",
    "COSMOS_ENDPOINT": "cosmos_endpoint",
    "COSMOS_KEY": "cosmos_key",
    "TEST_DURATION": "test_duration",
    "MAX_USERS": "max_users",
    "VOICELOAD_RESULTS_DIR": "results_dir",
    "VOICELOAD_INSECURE": "insecure",
    "VOICELOAD_CALL_LOG": "call_log",
    "VOICELOAD_ABSENT_ENDPOINTS": "absent_endpoints",
    "VOICELOAD_SCENARIOS": "flow_scenarios",
    "VOICELOAD_FLOW_CHANNEL": "flow_channel",
}


def _read_yaml(path: Path) -> dict:
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark else ""
        raise ConfigError(f"config file {path}{where}: not valid YAML") from None
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path}: top level must be a mapping")
    return data


def read_config_file(path: Path) -> dict:
    """A --config YAML's top level (ConfigError in one line if unreadable)."""
    return _read_yaml(path)


def _merge_yaml(data: dict) -> dict:
    """YAML may add profiles (merged with the built-ins) and override SLO targets by metric. Its `scenarios:`
    (a run plan, orchestrator/run_plan.py) are not settings."""
    merged = {key: value for key, value in data.items() if key != "scenarios"}
    if "profiles" in data:
        merged["profiles"] = {**{k: v.model_dump() for k, v in BUILTIN_PROFILES.items()}, **(data["profiles"] or {})}
    if "slo" in data:
        by_metric = {s.metric: s.model_dump() for s in DEFAULT_SLOS}
        for entry in data["slo"] or []:
            if not isinstance(entry, dict) or "metric" not in entry:
                raise ConfigError("config file: every slo entry needs a 'metric'")
            by_metric[entry["metric"]] = {**by_metric.get(entry["metric"], {}), **entry}
        merged["slo"] = list(by_metric.values())
    return merged


def _one_line(exc: ValidationError) -> str:
    first = exc.errors()[0]
    where = ".".join(str(p) for p in first["loc"]) or "config"
    message = first["msg"].removeprefix("Value error, ")
    return f"invalid {where}: {message}" + (f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else "")


def load_settings(
    overrides: Mapping[str, Any] | None = None,
    env: Mapping[str, str] | None = None,
    config_file: str | Path | None = None,
) -> Settings:
    """Build Settings from defaults, an optional YAML file, environment variables and overrides.

    `overrides` are command-line values (None means not given). Raises ConfigError.
    """
    env = os.environ if env is None else env
    values: dict[str, Any] = {}
    config_file = config_file or env.get("VOICELOAD_CONFIG")
    if config_file:
        values.update(_merge_yaml(_read_yaml(Path(config_file))))
    for var, field in ENV_VARS.items():
        if env.get(var):
            values[field] = env[var]
    values.update({k: v for k, v in (overrides or {}).items() if v is not None})
    try:
        return Settings(**values)
    except ValidationError as exc:
        raise ConfigError(_one_line(exc)) from None
