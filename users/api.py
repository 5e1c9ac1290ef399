"""The REST API user: the profile's health, start-call, inbound (Event Grid), callback (CloudEvents)
and call-metrics endpoints, with real payloads, weighted like a call assistant's control plane."""

from __future__ import annotations

import datetime as dt
import random
import uuid
from collections import deque

from locust import between, task
from locust.contrib.fasthttp import FastHttpUser

from users.run_context import RECORDER
from users.call_setup import random_e164, twilio_webhook_form
from users.runtime import get_settings


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def event_grid_validation() -> list[dict]:
    return [{"id": str(uuid.uuid4()), "topic": "/subscriptions/voiceload", "subject": "", "eventTime": _now(),
             "eventType": "Microsoft.EventGrid.SubscriptionValidationEvent", "dataVersion": "1",
             "data": {"validationCode": str(uuid.uuid4()), "validationUrl": ""}}]


def event_grid_incoming_call() -> list[dict]:
    return [{"id": str(uuid.uuid4()), "topic": "/subscriptions/voiceload", "subject": f"/caller/{random_e164()}",
             "eventTime": _now(), "eventType": "Microsoft.Communication.IncomingCall", "dataVersion": "1.0",
             "data": {"to": {"kind": "phoneNumber", "rawId": f"4:{random_e164()}"},
                      "from": {"kind": "phoneNumber", "rawId": f"4:{random_e164()}"},
                      "incomingCallContext": uuid.uuid4().hex, "correlationId": str(uuid.uuid4())}}]


def cloud_events(call_id: str, event_type: str = "Microsoft.Communication.CallConnected") -> list[dict]:
    return [{"specversion": "1.0", "id": str(uuid.uuid4()), "source": f"calling/callConnections/{call_id}",
             "type": event_type, "time": _now(), "datacontenttype": "application/json",
             "data": {"callConnectionId": call_id, "serverCallId": uuid.uuid4().hex, "correlationId": str(uuid.uuid4())}}]


class ApiUser(FastHttpUser):
    """Control-plane traffic of the chosen profile; endpoints the profile lacks are skipped."""

    wait_time = between(0.2, 0.8)
    weight = 1

    def on_start(self) -> None:
        settings = get_settings()
        profile = settings.target_profile  # without the endpoints the target was found not to serve
        self.profile = profile
        self.call_ids: deque[str] = deque(maxlen=50)
        actions = [] if "health" in settings.absent_endpoints else [(5, self.health)]
        if profile.docs:
            actions.append((1, self.docs))
        if profile.start_call and profile.media_ws and profile.media_ws.protocol == "acs":
            actions.append((2, self.initiate_call))
        if profile.start_call and profile.media_ws and profile.media_ws.protocol == "twilio":
            actions.append((2, self.twilio_webhook))
        if profile.inbound:
            actions.append((1, self.inbound_call))
        if profile.callbacks:
            actions.append((1, self.callbacks))
        if profile.call_metrics:
            actions.append((1, self.call_metrics))
        self.weights = [w for w, _ in actions]
        self.actions = [a for _, a in actions]
        if not actions:
            RECORDER.error("api", f"API user stopped: the target serves none of profile {settings.profile}'s REST endpoints")
            self.stop()

    @task
    def act(self) -> None:
        random.choices(self.actions, weights=self.weights)[0]()

    def health(self) -> None:
        self.client.get(self.profile.health.path, name="health")

    def docs(self) -> None:
        self.client.get(self.profile.docs.path, name="docs")

    def initiate_call(self) -> None:
        response = self.client.post(self.profile.start_call.path, json={"target_number": random_e164()}, name="start_call")
        if response.status_code == 200:
            try:
                self.call_ids.append(response.json()["call_id"])
            except (ValueError, KeyError, TypeError):
                pass

    def twilio_webhook(self) -> None:
        self.client.post(self.profile.start_call.path, data=twilio_webhook_form("CA" + uuid.uuid4().hex), name="start_call",
                         headers={"Content-Type": "application/x-www-form-urlencoded"})

    def inbound_call(self) -> None:
        payload = event_grid_validation() if random.random() < 0.2 else event_grid_incoming_call()
        self.client.post(self.profile.inbound.path, json=payload, name="inbound_event_grid")

    def callbacks(self) -> None:
        call_id = self.call_ids[-1] if self.call_ids else str(uuid.uuid4())
        self.client.post(self.profile.callbacks.path, json=cloud_events(call_id), name="callbacks")

    def call_metrics(self) -> None:
        if not self.call_ids:  # no call placed yet whose metrics could be asked for
            return self.health() if self.health in self.actions else None
        path = self.profile.call_metrics.path.format(call_id=random.choice(self.call_ids))
        self.client.get(path, name="call_metrics")
