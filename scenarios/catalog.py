"""Medical call scenarios (scenarios/*.yaml), loaded and validated with pydantic.

Schema of a scenario file (any number of files; ids are unique across them):

    scenarios:
      - id: chest_pain                 # [a-z0-9_]+, the flow's name in reports
        priority: emergency            # emergency | urgent | routine
        weight: 3                      # integer >= 1: share of flows (weighted round-robin)
        description: Crushing chest pain, arm numb   # optional
        turns:                         # one or more caller utterances, in order
          - clip: caller_crushing_chest_pain   # a caller clip id of scenarios/audio/manifest.json
            expect: [emergency services]       # optional: words the agent's reply must contain (where
                                               # the protocol shows its text: the browser socket)
          - clip: caller_pain_worse
            think_time_ms: 400         # optional: silence before this utterance (default: the run's)
            barge_in_after_ms: 900     # optional: interrupt the agent's previous reply this long after
                                       # it became audible (not on the first turn; think time is unused)
            dtmf: "1"                  # optional: a keypad digit sent after the agent answers this turn

`load_catalog(path)` reads one YAML file or every *.yaml in a folder (default: this folder) and raises
ScenarioError with one line naming the file, the field and the problem.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from audio.fixtures import AUDIO_DIR, load_clips

SCENARIO_DIR = Path(__file__).resolve().parent
PRIORITIES = ("emergency", "urgent", "routine")
Priority = Literal["emergency", "urgent", "routine"]


class ScenarioError(ValueError):
    """An invalid scenario file; the message is one line meant for the user."""


class TurnSpec(BaseModel):
    """One caller utterance of a scenario."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    clip: str = Field(min_length=1)
    think_time_ms: int | None = Field(None, ge=0, le=60_000)
    barge_in_after_ms: int | None = Field(None, ge=0, le=30_000)
    dtmf: str | None = Field(None, pattern=r"^[0-9*#]$")
    expect: tuple[str, ...] = ()

    @field_validator("expect", mode="before")
    @classmethod
    def _keywords(cls, value: object) -> object:
        if isinstance(value, str):
            value = [value]
        if isinstance(value, (list, tuple)) and any(not isinstance(k, str) or not k.strip() for k in value):
            raise ValueError("keywords must be non-empty strings")
        return value


class Scenario(BaseModel):
    """A whole consultation call: who calls, how urgent, what they say, what the agent must answer."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    id: str = Field(pattern=r"^[a-z0-9_]+$", max_length=60)
    priority: Priority
    weight: int = Field(1, ge=1, le=1000)
    description: str = ""
    turns: tuple[TurnSpec, ...] = Field(min_length=1, max_length=50)

    @model_validator(mode="after")
    def _first_turn_cannot_interrupt(self) -> Scenario:
        if self.turns[0].barge_in_after_ms is not None:
            raise ValueError("the first turn has no reply to interrupt (barge_in_after_ms)")
        return self


class ScenarioFile(BaseModel):
    model_config = ConfigDict(extra="forbid")
    scenarios: list[Scenario] = Field(min_length=1)


class Catalog:
    """Every scenario, in file order; weights give each one's share of the flows."""

    def __init__(self, scenarios: list[Scenario]) -> None:
        self.scenarios = scenarios

    def by_priority(self, priority: str) -> list[Scenario]:
        return [s for s in self.scenarios if s.priority == priority]

    def get(self, scenario_id: str) -> Scenario:
        for scenario in self.scenarios:
            if scenario.id == scenario_id:
                return scenario
        raise KeyError(scenario_id)


def _location(loc: tuple) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _one_line(path: Path, exc: ValidationError) -> str:
    error = exc.errors()[0]
    where = _location(error["loc"])
    message = error["msg"].removeprefix("Value error, ")
    more = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
    return f"{path}: {where}: {message}{more}" if where else f"{path}: {message}{more}"


def parse_file(path: Path) -> list[Scenario]:
    """One scenario file -> its scenarios (ScenarioError with a one-line reason)."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ScenarioError(f"{path}: cannot read: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ScenarioError(f"{path}:{where}: not valid YAML: {problem}") from None
    if not isinstance(data, dict):
        raise ScenarioError(f"{path}: expected a mapping with a 'scenarios' list")
    try:
        return ScenarioFile.model_validate(data).scenarios
    except ValidationError as exc:
        raise ScenarioError(_one_line(path, exc)) from None


def load_catalog(path: str | Path | None = None, manifest: Path = AUDIO_DIR / "manifest.json") -> Catalog:
    """Scenarios from a YAML file or every *.yaml of a folder (default: scenarios/), checked against
    the audio manifest: every turn's clip must be a caller clip there."""
    path = Path(path) if path else SCENARIO_DIR
    if not path.exists():
        raise ScenarioError(f"{path}: no such scenario file or folder")
    files = sorted(path.glob("*.yaml")) if path.is_dir() else [path]
    if not files:
        raise ScenarioError(f"{path}: no *.yaml scenario files")
    callers = {clip.id for clip in load_clips(manifest) if clip.role == "caller"}
    scenarios: list[Scenario] = []
    for file in files:
        found = parse_file(file)
        for i, scenario in enumerate(found):
            for j, turn in enumerate(scenario.turns):
                if turn.clip not in callers:
                    raise ScenarioError(f"{file}: scenarios[{i}].turns[{j}].clip: unknown caller clip {turn.clip!r} "
                                        f"(not in {manifest})")
        scenarios += found
    twice = [sid for sid, n in Counter(s.id for s in scenarios).items() if n > 1]
    if twice:
        raise ScenarioError(f"{path}: scenario id {twice[0]!r} is defined more than once")
    return Catalog(scenarios)


def weighted_order(scenarios: list[Scenario]) -> list[Scenario]:
    """One cycle of smooth weighted round-robin (as nginx balances): over the cycle each scenario comes
    `weight` times, spread out rather than in runs."""
    current = [0] * len(scenarios)
    total = sum(s.weight for s in scenarios)
    order = []
    for _ in range(total):
        for i, scenario in enumerate(scenarios):
            current[i] += scenario.weight
        best = max(range(len(scenarios)), key=lambda i: current[i])
        current[best] -= total
        order.append(scenarios[best])
    return order

