"""The options run_load_tests.py and the locustfile (and so the web UI's start form) both have, declared once:
what each means, its type, and its flag on each side. Locust has its own --profile and --config, so those
two go by other names on the Locust side. No Locust import here.

run_load_tests.py passes the values on to each group's Locust as `--<dest with dashes>` (orchestrator/
locust_run.py locust_command), which is each option's Locust flag.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from config import BUILTIN_PROFILES
from orchestrator.arg_types import fraction, non_negative_int, positive_int


@dataclass(frozen=True)
class SharedOption:
    dest: str  # the Locust option's name, as the locustfile reads it
    locust_flag: str
    cli_flags: tuple[str, ...]  # on run_load_tests.py (empty: Locust only)
    type: Callable[[str], Any]
    help: str
    locust_default: Any = None
    cli_default_help: str = "the suite's"  # what run_load_tests.py uses when it is not given
    cli_dest: str | None = None  # run_load_tests.py's name for it, when not `dest`
    cli_type: Callable[[str], Any] | None = None
    env_var: str | None = None
    web_ui: bool = True


def _count(kind: str, user_class: str, what: str, cli: tuple[str, ...] = ()) -> SharedOption:
    flag = "--" + kind.replace("_", "-")
    return SharedOption(kind, flag, cli, non_negative_int, f"{what} ({user_class})", 0, "the suite's, or from -u")


SHARED_OPTIONS: tuple[SharedOption, ...] = (
    SharedOption("target_profile", "--target-profile", ("--profile",), str,
                 f"target profile: {', '.join(BUILTIN_PROFILES)} or one defined in the YAML config",
                 cli_default_help="artagent-v1", cli_dest="profile", env_var="VOICELOAD_PROFILE"),
    SharedOption("voiceload_config", "--voiceload-config", ("--config",), str,
                 "YAML file: settings, SLO targets, thresholds, extra profiles, and (run_load_tests.py) a run plan's "
                 "scenarios", cli_default_help="none", cli_dest="config", cli_type=Path, env_var="VOICELOAD_CONFIG"),
    SharedOption("turns_per_call", "--turns-per-call", ("--turns-per-call",), positive_int,
                 "caller utterances per phone call", cli_default_help="the suite's, 2"),
    SharedOption("barge_in_rate", "--barge-in-rate", ("--barge-in-rate",), fraction,
                 "share of later caller turns that interrupt the agent while it speaks, 0-1", cli_default_help="0.25"),
    _count("api_users", "ApiUser", "API users", ("--api-users",)),
    _count("voice_users", "TelephonyCaller", "phone callers", ("--websocket-users", "--voice-users")),
    _count("browser_users", "BrowserCaller", "browser callers", ("--browser-users",)),
    _count("relay_users", "RelayListener", "relay dashboard listeners", ("--relay-users",)),
    _count("redis_users", "RedisUser", "Redis users"),
    _count("llm_users", "LLMUser", "LLM users"),
    _count("speech_users", "SpeechUser", "Speech users"),
    _count("cosmos_users", "CosmosUser", "Cosmos DB users"),
    SharedOption("integration_users", "--integration-users", ("--integration-users",), non_negative_int,
                 "consultation callers, each running whole medical scenarios (ConsultationUser)", 0,
                 "the suite's; 0 leaves the group out"),
)
USER_COUNT_DESTS = tuple(o.dest for o in SHARED_OPTIONS if o.dest.endswith("_users"))


def add_to_locust(parser: Any) -> None:
    """The shared options on Locust's parser (a user count's 0 there means: by the classes' weights)."""
    for option in SHARED_OPTIONS:
        default_help = "0: by weight" if option.dest in USER_COUNT_DESTS else f"default {option.cli_default_help}"
        parser.add_argument(option.locust_flag, dest=option.dest, type=option.type, default=option.locust_default,
                            env_var=option.env_var, include_in_web_ui=option.web_ui,
                            help=f"{option.help} ({default_help})")


def add_to_cli(parser: Any) -> None:
    """The shared options on run_load_tests.py's parser (not given: None, and the run decides)."""
    for option in SHARED_OPTIONS:
        if option.cli_flags:
            parser.add_argument(*option.cli_flags, dest=option.cli_dest or option.dest, type=option.cli_type or option.type,
                                default=None, help=f"{option.help} (default: {option.cli_default_help})")
