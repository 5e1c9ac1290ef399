"""An OpenAI-compatible chat completions endpoint with the target's modelled LLM behind it.

POST /v1/chat/completions (OpenAI style) and /openai/deployments/{deployment}/chat/completions
(Azure OpenAI style). Streaming answers are server-sent events: a role chunk, content chunks at
`llm_tokens_per_s` after a modelled time to first token, a finish chunk, then `data: [DONE]`.
Requests share the voice pipeline's finite LLM slots, so direct LLM load and calls compete for the
same capacity, as they do on one GPU-backed deployment. Any API key is accepted.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import AsyncIterator

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import JSONResponse, StreamingResponse

from target.pipeline import sleep_until

router = APIRouter()


def _chunk(completion_id: str, model: str, delta: dict, finish: str | None = None) -> bytes:
    body = {"id": completion_id, "object": "chat.completion.chunk", "created": int(time.time()), "model": model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}
    return b"data: " + json.dumps(body).encode() + b"\n\n"


async def _completion(request: Request, deployment: str | None) -> object:
    try:
        body = await request.json()
    except ValueError:
        raise HTTPException(400, "body must be JSON") from None
    if not isinstance(body, dict) or not isinstance(body.get("messages"), list) or not body["messages"]:
        raise HTTPException(400, "messages must be a non-empty list")
    ctx = request.app.state.ctx
    settings = ctx.settings
    model = deployment or str(body.get("model") or "voiceload-reference")
    clip = ctx.clips[hash(json.dumps(body["messages"][-1], sort_keys=True)) % len(ctx.clips)]
    words = list(clip.words)[: int(body.get("max_tokens") or settings.llm_reply_tokens)] or ["Okay."]
    ttft = ctx.latency.draw("llm_ttft") / 1000.0
    interval = 1.0 / settings.llm_tokens_per_s
    await ctx.slots.acquire(ttft + len(words) * interval)
    first_token_at = time.perf_counter() + ttft
    completion_id = "chatcmpl-" + uuid.uuid4().hex
    if not body.get("stream"):
        await sleep_until(first_token_at + (len(words) - 1) * interval)
        text = " ".join(words)
        return JSONResponse({"id": completion_id, "object": "chat.completion", "created": int(time.time()), "model": model,
                             "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
                             "usage": {"prompt_tokens": sum(len(str(m.get("content", "")).split()) for m in body["messages"]
                                                            if isinstance(m, dict)),
                                       "completion_tokens": len(words), "total_tokens": len(words)}})

    async def stream() -> AsyncIterator[bytes]:
        yield _chunk(completion_id, model, {"role": "assistant", "content": ""})
        for index, word in enumerate(words):  # token k on its absolute deadline
            await sleep_until(first_token_at + index * interval)
            yield _chunk(completion_id, model, {"content": word if index == 0 else " " + word})
        yield _chunk(completion_id, model, {}, finish="stop")
        yield b"data: [DONE]\n\n"

    return StreamingResponse(stream(), media_type="text/event-stream", headers={"Cache-Control": "no-cache"})


@router.post("/v1/chat/completions")
async def chat_completions(request: Request):
    return await _completion(request, None)


@router.post("/openai/deployments/{deployment}/chat/completions")
async def azure_chat_completions(deployment: str, request: Request):
    return await _completion(request, deployment)
