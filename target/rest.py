"""REST endpoints of all three profiles (artagent-v1, rtmedagent, twilio-media), with their real shapes."""

from __future__ import annotations

import json
import re
import uuid
from typing import Any
from xml.sax.saxutils import quoteattr

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel

from target.context import AppContext

E164 = re.compile(r"^\+[1-9]\d{7,14}$")
VALIDATION_EVENT = "Microsoft.EventGrid.SubscriptionValidationEvent"
INCOMING_CALL = "Microsoft.Communication.IncomingCall"
CALLBACK_STATUS = {
    "Microsoft.Communication.CallConnected": "connected",
    "Microsoft.Communication.CallDisconnected": "disconnected",
    "Microsoft.Communication.CallTransferAccepted": "transferred",
    "Microsoft.Communication.CallTransferFailed": "transfer_failed",
}

router = APIRouter()


def ctx_of(request: Request) -> AppContext:
    return request.app.state.ctx


class InitiateCall(BaseModel):
    """Outbound call request body."""

    target_number: str
    context: dict[str, Any] | None = None


async def _json_body(request: Request) -> Any:
    try:
        return json.loads(await request.body())
    except ValueError:
        raise HTTPException(400, "body must be JSON") from None


@router.get("/api/v1/health")
@router.get("/health")
@router.get("/healthcheck")
async def health(request: Request) -> dict[str, Any]:
    """Liveness plus Redis status, call gauges, LLM slot usage and error counters."""
    ctx = ctx_of(request)
    redis_status = await ctx.sessions.status()
    return {
        "status": "degraded" if redis_status == "down" else "healthy",
        "redis": redis_status,
        "active_calls": ctx.active_calls,
        "calls_total": ctx.calls_total,
        "llm_slots": ctx.slots.snapshot(),
        "counters": ctx.counters.as_dict(),
    }


@router.post("/api/v1/calls/initiate")
@router.post("/api/call")
async def initiate_call(body: InitiateCall, request: Request) -> dict[str, Any]:
    """Start an outbound call to an E.164 number; its call id can then join a media socket."""
    if not E164.match(body.target_number):
        raise HTTPException(422, f"target_number must be E.164 (e.g. +15551234567), got {body.target_number!r}")
    ctx = ctx_of(request)
    truth = ctx.truths.register(str(uuid.uuid4()), status="initiating", target_number=body.target_number)
    ctx.sessions.save(truth.call_id, {"created_at": truth.created_at, "status": "initiating", "protocol": "acs",
                                      "target_number": body.target_number, "context": body.context})
    ctx.sessions.publish(truth.call_id, "call_initiated", {"target_number": body.target_number})
    return {"call_id": truth.call_id, "status": "initiating", "target_number": body.target_number}


@router.post("/api/v1/calls/answer")
@router.post("/api/call/inbound")
async def answer_call(request: Request) -> dict[str, Any]:
    """Event Grid webhook: subscription validation handshake, or IncomingCall -> answered call."""
    events = await _json_body(request)
    if not isinstance(events, list) or not events:
        raise HTTPException(400, "body must be a non-empty JSON array of Event Grid events")
    if not all(isinstance(e, dict) and isinstance(e.get("eventType"), str) for e in events):
        raise HTTPException(400, "every Event Grid event needs an 'eventType' string")
    ctx = ctx_of(request)
    answered: list[str] = []
    for event in events:
        data = event.get("data") if isinstance(event.get("data"), dict) else {}
        if event["eventType"] == VALIDATION_EVENT:
            if "validationCode" not in data:
                raise HTTPException(400, "SubscriptionValidationEvent without data.validationCode")
            return {"validationResponse": data["validationCode"]}
        if event["eventType"] == INCOMING_CALL:
            call_id = data.get("callConnectionId") or str(uuid.uuid4())
            truth = ctx.truths.register(str(call_id), status="answered")
            ctx.sessions.save(truth.call_id, {"created_at": truth.created_at, "status": "answered", "protocol": "acs"})
            ctx.sessions.publish(truth.call_id, "call_answered", {"from": (data.get("from") or {}).get("rawId")
                                                                  if isinstance(data.get("from"), dict) else None})
            answered.append(truth.call_id)
    if answered:
        return {"call_id": answered[0], "status": "answered", **({"call_ids": answered} if len(answered) > 1 else {})}
    return {"status": "ignored", "processed": len(events)}


@router.post("/api/v1/calls/callbacks")
@router.post("/call/callbacks")
async def call_callbacks(request: Request) -> dict[str, Any]:
    """ACS Call Automation CloudEvents: update call state; returns how many events were processed."""
    events = await _json_body(request)
    if not isinstance(events, list):
        raise HTTPException(400, "body must be a JSON array of CloudEvents")
    for event in events:
        if not (isinstance(event, dict) and isinstance(event.get("type"), str) and isinstance(event.get("data"), dict)):
            raise HTTPException(400, "every CloudEvent needs a 'type' string and a 'data' object")
    ctx = ctx_of(request)
    for event in events:
        call_id = event["data"].get("callConnectionId")
        kind = event["type"]
        truth = ctx.truths.get(str(call_id)) if call_id else None
        status = CALLBACK_STATUS.get(kind)
        if truth is not None:
            truth.last_callback = kind
            if status is not None:
                truth.status = status
        if call_id:
            if status is not None:
                ctx.sessions.save(str(call_id), {"status": status})
            ctx.sessions.publish(str(call_id), "callback", {"type": kind})
    return {"processed": len(events)}


@router.get("/api/v1/metrics/session/{call_id}")
@router.get("/api/call/{call_id}/metrics")
async def call_metrics(call_id: str, request: Request) -> dict[str, Any]:
    """Ground truth of one call (by call id or session id)."""
    truth = ctx_of(request).truths.get(call_id)
    if truth is None:
        raise HTTPException(404, f"unknown call {call_id!r}")
    return truth.as_dict()


@router.post("/calls/inbound")
async def twilio_inbound(request: Request) -> Response:
    """Twilio voice webhook: answer with TwiML that connects the call to the media stream socket."""
    form = await request.form()
    caller, callee = form.get("From"), form.get("To")
    if not caller or not callee:
        return JSONResponse({"detail": "form fields 'From' and 'To' are required"}, status_code=400)
    call_sid = str(form.get("CallSid") or "CA" + uuid.uuid4().hex)
    ctx = ctx_of(request)
    truth = ctx.truths.register(call_sid, status="ringing", target_number=str(callee))
    ctx.sessions.save(call_sid, {"created_at": truth.created_at, "status": "ringing", "protocol": "twilio"})
    ctx.sessions.publish(call_sid, "call_inbound", {"from": str(caller), "to": str(callee)})
    forwarded = request.headers.get("x-forwarded-proto", request.url.scheme)
    scheme = "wss" if forwarded in ("https", "wss") else "ws"
    host = request.headers.get("host") or f"{request.url.hostname}:{request.url.port}"
    twiml = ('<?xml version="1.0" encoding="UTF-8"?><Response><Connect>'
             f'<Stream url={quoteattr(f"{scheme}://{host}/audio-stream")}>'
             f'<Parameter name="callSid" value={quoteattr(call_sid)}/></Stream></Connect></Response>')
    return Response(twiml, media_type="application/xml")
