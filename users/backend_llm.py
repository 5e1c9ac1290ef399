"""LLMUser: streamed chat completions through the real openai SDK, timed the way a voice turn feels them.

Any OpenAI-compatible endpoint (OPENAI_ENDPOINT): OpenAI, vLLM, llama.cpp's server, or Azure OpenAI
(OPENAI_DEPLOYMENT + OPENAI_API_VERSION). Without OPENAI_ENDPOINT the user stops with one line: the LLM
is never guessed from --host. run_load_tests.py's local stack sets it to the reference target's own `/v1`,
served with modelled time to first token, token rate and finite slots. Metrics (group `openai`): llm_ttft (request sent -> first content token),
llm_token_interval (between consecutive content chunks), llm_total, and llm_tokens_per_s; HTTP 429s
are counted apart (llm_throttled) with their retry-after.
"""

from __future__ import annotations

import random
import time

import importlib
import types

import users.gevent_compat  # noqa: F401  (before openai/httpx)
import httpx
from locust import User, between, task

from users.run_context import RECORDER, emit
from users.runtime import get_settings
from audio.fixtures import caller_clips

SYSTEM_PROMPT = ("You are a calm, concise medical call assistant on a phone line. Answer in one or two short "
                 "sentences, ask one clarifying question, and escalate emergencies immediately.")


openai: types.ModuleType | None = None  # loaded by load_sdk(): its import takes ~0.8 s, paid only by runs with LLM users


def load_sdk() -> None:
    """Import the openai SDK. Done at Locust's init when LLMUser may run, before any caller's audio
    frame: an import inside a running test would stall the event loop (and every call) for its duration."""
    global openai
    if openai is None:
        openai = importlib.import_module("openai")


def build_client(settings) -> tuple["openai.OpenAI", str]:
    """(client, model or deployment name) for the configured endpoint (OPENAI_ENDPOINT)."""
    load_sdk()
    http_client = httpx.Client(verify=not settings.insecure, timeout=httpx.Timeout(30.0, connect=5.0))
    key = settings.openai_api_key.get_secret_value() if settings.openai_api_key else "voiceload-local"
    if settings.openai_endpoint and settings.openai_deployment:
        client = openai.AzureOpenAI(azure_endpoint=settings.openai_endpoint, api_key=key, max_retries=0,
                                    api_version=settings.openai_api_version, http_client=http_client)
        return client, settings.openai_deployment
    return openai.OpenAI(base_url=settings.openai_endpoint, api_key=key, max_retries=0, http_client=http_client), settings.openai_model


class LLMUser(User):
    wait_time = between(0.5, 1.5)
    weight = 1

    def on_start(self) -> None:
        self.settings = get_settings()
        if not self.settings.openai_endpoint:  # never guessed from --host: the agent is not its LLM
            RECORDER.error("openai", "LLM user skipped: OPENAI_ENDPOINT is not set; set it (and OPENAI_API_KEY / "
                                     "OPENAI_DEPLOYMENT for Azure) to load-test an LLM")
            self.stop()
            return
        self.client, self.model = build_client(self.settings)

    @task
    def caller_turn(self) -> None:
        utterance = random.choice(caller_clips()).text
        messages = [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": utterance}]
        sent = time.perf_counter()
        first = last = None
        tokens = 0
        try:
            stream = self.client.chat.completions.create(model=self.model, messages=messages, stream=True, max_tokens=60)
            for chunk in stream:
                if not chunk.choices or not chunk.choices[0].delta.content:
                    continue
                now = time.perf_counter()
                if first is None:
                    first = now
                    emit("openai", "llm_ttft", (now - sent) * 1000.0)
                else:
                    RECORDER.record("llm_token_interval", (now - last) * 1000.0, "openai")
                last = now
                tokens += 1
        except openai.RateLimitError as exc:
            RECORDER.count("llm_throttled")
            retry_after = exc.response.headers.get("retry-after") if exc.response is not None else None
            emit("openai", "llm_ttft", (time.perf_counter() - sent) * 1000.0, f"HTTP 429 (retry-after {retry_after or '?'})")
            return
        except openai.APIStatusError as exc:
            emit("openai", "llm_ttft", (time.perf_counter() - sent) * 1000.0, f"HTTP {exc.status_code}")
            return
        except (openai.APIError, httpx.HTTPError) as exc:
            emit("openai", "llm_ttft", (time.perf_counter() - sent) * 1000.0, f"{exc.__class__.__name__}")
            return
        if first is None:
            emit("openai", "llm_ttft", (time.perf_counter() - sent) * 1000.0, "stream ended without content")
            return
        total = time.perf_counter() - sent
        emit("openai", "llm_total", total * 1000.0)
        if tokens > 1 and last > first:
            RECORDER.record("llm_tokens_per_s", (tokens - 1) / (last - first), "openai")
