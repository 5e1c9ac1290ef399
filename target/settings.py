"""Every knob of the reference target, from CLI flags (`--kebab-case`) and env vars (`VOICELOAD_TARGET_UPPER_SNAKE`).

Precedence: command line > environment > default. `load_settings` raises `SettingsError` with one clear
sentence for anything invalid; `python -m target` prints it on stderr and exits 2.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import typing
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

ENV_PREFIX = "VOICELOAD_TARGET_"
DEFAULT_MANIFEST = str(Path(__file__).resolve().parent.parent / "scenarios" / "audio" / "manifest.json")
LATENCY_MODES = ("random", "fixed")
LOG_LEVELS = ("critical", "error", "warning", "info", "debug", "trace")


class SettingsError(ValueError):
    """An invalid setting; the message is one line meant for the user."""


@dataclass(frozen=True)
class Settings:
    """Configuration of one target process. Durations in milliseconds, rates in [0, 1]."""

    bind: str = "127.0.0.1"
    port: int = 8000
    redis_url: str | None = None
    latency_mode: str = "random"
    seed: int = 1
    eot_silence_ms: float = 300.0
    vad_threshold: float = 500.0
    barge_in_min_ms: float = 40.0
    stt_partial_ms: float = 200.0
    stt_partial_p95_ms: float = 350.0
    stt_final_ms: float = 60.0
    stt_final_p95_ms: float = 90.0
    llm_ttft_ms: float = 150.0
    llm_ttft_p95_ms: float = 220.0
    llm_tokens_per_s: float = 60.0
    llm_reply_tokens: int = 30
    llm_slots: int = 16
    tts_first_byte_ms: float = 50.0
    tts_first_byte_p95_ms: float = 80.0
    agent_frame_ms: int = 40
    http_error_rate: float = 0.0
    ws_drop_rate: float = 0.0
    stall_ms: float = 0.0
    # the session-context read before each reply goes through a bounded connection pool (the seed's DB pool)
    db_pool_size: int = 10
    db_max_overflow: int = 10
    db_pool_timeout_s: float = 30.0
    db_query_ms: float = 0.0  # modelled extra time a context read holds its connection
    log_level: str = "warning"
    audio_manifest: str = DEFAULT_MANIFEST
    ssl_certfile: str = ""  # with ssl_keyfile: serve https/wss (e.g. to test a client's TLS verification)
    ssl_keyfile: str = ""

    def validate(self) -> Settings:
        """Return self, or raise SettingsError naming the first bad knob."""
        if not 1 <= self.port <= 65535:
            raise SettingsError(f"port must be in 1..65535, got {self.port}")
        if self.latency_mode not in LATENCY_MODES:
            raise SettingsError(f"latency_mode must be one of {', '.join(LATENCY_MODES)}, got {self.latency_mode!r}")
        if self.log_level not in LOG_LEVELS:
            raise SettingsError(f"log_level must be one of {', '.join(LOG_LEVELS)}, got {self.log_level!r}")
        for name in ("http_error_rate", "ws_drop_rate"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise SettingsError(f"{name} must be within [0, 1], got {value}")
        positive = ("eot_silence_ms", "barge_in_min_ms", "llm_tokens_per_s", "llm_reply_tokens", "llm_slots",
                    "agent_frame_ms", *(f"{stage}_ms" for stage in STAGES), *(f"{stage}_p95_ms" for stage in STAGES))
        for name in positive:
            if getattr(self, name) <= 0:
                raise SettingsError(f"{name} must be > 0, got {getattr(self, name)}")
        if self.db_pool_size < 1 or self.db_max_overflow < 0 or self.db_pool_timeout_s <= 0:
            raise SettingsError("db_pool_size must be >= 1, db_max_overflow >= 0 and db_pool_timeout_s > 0")
        for name in ("stall_ms", "vad_threshold", "db_query_ms"):
            if getattr(self, name) < 0:
                raise SettingsError(f"{name} must be >= 0, got {getattr(self, name)}")
        for stage in STAGES:
            p50, p95 = getattr(self, f"{stage}_ms"), getattr(self, f"{stage}_p95_ms")
            if p95 < p50:
                raise SettingsError(f"{stage}_p95_ms ({p95}) must be >= {stage}_ms ({p50})")
        if bool(self.ssl_certfile) != bool(self.ssl_keyfile):
            raise SettingsError("ssl_certfile and ssl_keyfile go together")
        for name in ("ssl_certfile", "ssl_keyfile"):
            if getattr(self, name) and not Path(getattr(self, name)).is_file():
                raise SettingsError(f"{name} not found: {getattr(self, name)}")
        if not Path(self.audio_manifest).is_file():
            raise SettingsError(f"audio_manifest not found: {self.audio_manifest}")
        return self

    def public(self) -> dict[str, typing.Any]:
        """The knobs that shape timing, as copied into every call's ground truth."""
        skip = {"bind", "port", "redis_url", "log_level", "audio_manifest", "ssl_certfile", "ssl_keyfile"}
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name not in skip}


# The stress framework's environment variable names for the pool knobs (.env.development etc.)
SEED_ENV = {"db_pool_size": "DB_POOL_SIZE", "db_max_overflow": "DB_MAX_OVERFLOW", "db_pool_timeout_s": "DB_POOL_TIMEOUT"}

# Modelled stages with a (p50, p95) pair: `<stage>_ms` is the p50, `<stage>_p95_ms` the p95.
STAGES = ("stt_partial", "stt_final", "llm_ttft", "tts_first_byte")


def _convert(name: str, raw: str, kind: typing.Any) -> typing.Any:
    if name == "redis_url":
        return raw or None
    target = {int: int, float: float}.get(kind, str)
    try:
        return target(raw)
    except ValueError:
        raise SettingsError(f"{name} expects {'an integer' if target is int else 'a number'}, got {raw!r}") from None


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> typing.NoReturn:  # one line instead of usage + error
        raise SettingsError(message)


def build_parser() -> argparse.ArgumentParser:
    """CLI with one `--kebab-case` option per Settings field (all default to "unset")."""
    parser = _Parser(prog="python -m target", description="voiceload reference voice agent (system under test)")
    for field in dataclasses.fields(Settings):
        flag = "--" + field.name.replace("_", "-")
        parser.add_argument(flag, dest=field.name, default=None, metavar=field.name.upper(),
                            help=f"default {field.default!r}; env {ENV_PREFIX}{field.name.upper()}")
    return parser


def load_settings(argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None) -> Settings:
    """Build validated Settings from CLI args and env vars; raise SettingsError if invalid."""
    environ = os.environ if environ is None else environ
    args = vars(build_parser().parse_args(list(argv) if argv is not None else []))
    hints = typing.get_type_hints(Settings)
    values: dict[str, typing.Any] = {}
    for field in dataclasses.fields(Settings):
        raw = args.get(field.name)
        if raw is None:
            raw = environ.get(ENV_PREFIX + field.name.upper())
        if raw is None and field.name in SEED_ENV:  # DB_POOL_SIZE etc., as the seed's .env files set them
            raw = environ.get(SEED_ENV[field.name])
        if raw is not None:
            values[field.name] = _convert(field.name, raw, hints[field.name])
    return Settings(**values).validate()
