"""Placing a call over REST and finding its media socket, per profile protocol."""

from __future__ import annotations

import random
import uuid
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from urllib.parse import urlencode

from config import Settings
from protocols.acs import AcsCodec
from protocols.media import MediaCodec
from protocols.twilio import TwilioCodec


class CallSetupError(Exception):
    """The start-call request failed or its answer did not say where to stream."""


@dataclass
class MediaTarget:
    call_id: str
    url: str
    headers: dict[str, str]
    codec: MediaCodec


def random_e164() -> str:
    """A US number in the 555-01xx fictional range, E.164 formatted."""
    return f"+1555{random.randint(100, 199):03d}{random.randint(0, 9999):04d}"


def call_id_from(body: dict) -> str:
    """The call id in a start-call answer (the accelerators name it differently); CallSetupError if none."""
    for key in ("call_id", "callConnectionId", "call_connection_id", "id"):
        if isinstance(body.get(key), str) and body[key]:
            return body[key]
    raise CallSetupError("start-call response has no call id")


def acs_media_url(ws_base: str, path: str, call_id: str) -> tuple[str, dict[str, str]]:
    """(URL, headers) of an ACS media socket for a call: the call id in the query and in a header."""
    return f"{ws_base}{path}?{urlencode({'call_connection_id': call_id})}", {"x-ms-call-connection-id": call_id}


def twiml_stream(twiml: str) -> tuple[str, dict[str, str]] | None:
    """(stream URL, its <Parameter>s) of a TwiML <Connect><Stream>, or None when it has none."""
    try:
        stream = ET.fromstring(twiml).find("./Connect/Stream")
    except ET.ParseError:
        return None
    if stream is None or not stream.get("url"):
        return None
    return stream.get("url"), {p.get("name"): p.get("value") for p in stream.findall("Parameter")}


def twilio_webhook_form(call_sid: str) -> str:
    """The inbound-call webhook's form body, as Twilio posts it."""
    return urlencode({"From": random_e164(), "To": random_e164(), "CallSid": call_sid})


def start_call(client, settings: Settings) -> MediaTarget:
    """POST the profile's start-call request with `client` (Locust's FastHttpSession) -> media target."""
    profile = settings.target_profile
    media = profile.media_ws
    if media is None or profile.start_call is None:
        raise CallSetupError(f"profile {settings.profile} has no telephony media socket")
    ws_base = settings.websocket_base_url
    if media.protocol == "twilio":
        return _start_twilio(client, settings, ws_base)
    with client.post(profile.start_call.path, json={"target_number": random_e164()}, name="start_call",
                     catch_response=True) as response:
        if response.status_code != 200:
            response.failure(f"HTTP {response.status_code}")
            raise CallSetupError(f"start call answered HTTP {response.status_code}")
        try:
            call_id = call_id_from(response.json())
        except (ValueError, CallSetupError) as exc:
            response.failure(str(exc))
            raise CallSetupError(str(exc)) from None
    url, headers = acs_media_url(ws_base, media.path, call_id)
    return MediaTarget(call_id, url, headers, AcsCodec(call_id))


def _start_twilio(client, settings: Settings, ws_base: str) -> MediaTarget:
    call_sid = "CA" + uuid.uuid4().hex
    with client.post(settings.target_profile.start_call.path, data=twilio_webhook_form(call_sid), name="start_call",
                     catch_response=True, headers={"Content-Type": "application/x-www-form-urlencoded"}) as response:
        if response.status_code != 200:
            response.failure(f"HTTP {response.status_code}")
            raise CallSetupError(f"inbound webhook answered HTTP {response.status_code}")
        stream = twiml_stream(response.text)
        if stream is None:
            response.failure("TwiML has no <Connect><Stream url>")
            raise CallSetupError("TwiML has no <Connect><Stream url>")
    url, params = stream
    if not url.startswith(("ws://", "wss://")):
        url = f"{ws_base}{settings.target_profile.media_ws.path}"
    call_sid = params.get("callSid") or call_sid
    return MediaTarget(call_sid, url, {}, TwilioCodec(call_sid, "MZ" + uuid.uuid4().hex, params))
