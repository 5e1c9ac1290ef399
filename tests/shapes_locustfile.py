"""Locust entry for the shape tests: voiceload's locustfile plus the shapes' options and installation.
Both calls are no-ops when locustfile.py already makes them, so this keeps working after it does."""

from locust import events

from locustfile import *  # noqa: F401,F403 - voiceload's users, options, settings and report plumbing
from shapes import add_shape_options, install_shape


@events.init_command_line_parser.add_listener
def _shape_options(parser) -> None:
    add_shape_options(parser)


@events.init.add_listener
def _install_shape(environment, **_kw) -> None:
    install_shape(environment)
