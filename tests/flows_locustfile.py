"""Locust entry for the integration-flow tests: voiceload's locustfile (options, settings, exact metrics,
report.json on quit) plus ConsultationUser. Run it with the user class named: `... ConsultationUser`."""

from locustfile import *  # noqa: F401,F403 - installs voiceload's options and metrics plumbing
from users.flows import ConsultationUser  # noqa: F401
