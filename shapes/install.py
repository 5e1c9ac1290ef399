"""Make Locust run the shape chosen by --shape, headless and in the web UI. Imports Locust: use it only
inside a Locust process (shapes/__init__.py imports it lazily).

Locust 2.x keeps one shape *instance* in `environment.shape_class`. Headless, it calls `start_shape()`
after the init event when that is set; the web UI's /swarm calls `start_shape()` instead of starting
users when it is set (and hides the users / spawn rate / run time fields). So the shape is installed at
init, and before each /swarm it is rebuilt from the form's values (the form shows every shape option), or
the form gets one clear error line. With --class-picker, every shape is offered in the picker and the
picked one is rebuilt from the form the same way.
"""

from __future__ import annotations

import functools
import logging
import os
import sys
import weakref
from argparse import Namespace

from flask import Response, jsonify, request
from locust.env import Environment
from locust.runners import WorkerRunner
from locust.shape import LoadTestShape

from locust_adapters import internals
from shapes.base import Shape, ShapeError
from shapes.options import SHAPE_CLASSES, merged_options, shape_class_for

log = logging.getLogger("voiceload")
_INSTALLED: weakref.WeakSet[Environment] = weakref.WeakSet()


@functools.cache
def locust_class(cls: type[Shape]) -> type[LoadTestShape]:
    """The Locust LoadTestShape of a voiceload shape: the same class (same name in reports and the web
    UI), with Locust's LoadTestShape as a further base."""
    return type(cls.__name__, (cls, LoadTestShape), {"__module__": cls.__module__, "__doc__": cls.__doc__})


def build(cls: type[Shape], options: Namespace, environment: Environment) -> LoadTestShape:
    shape = locust_class(cls).from_options(options)
    shape.runner = environment.runner
    return shape


def install_shape(environment: Environment) -> None:
    """At Locust's init: run the --shape shape (none: leave Locust as it is). Bad values end the process
    with exit code 2 and one line, before anything starts. Calling it twice is a no-op."""
    options = environment.parsed_options
    if options is None or environment in _INSTALLED or isinstance(environment.runner, WorkerRunner):
        return  # a worker runs what the master's shape asks for
    _INSTALLED.add(environment)
    try:
        cls = shape_class_for(options)
        shape = build(cls, options, environment) if cls else None
    except ShapeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.stderr.flush()
        os._exit(2)  # as for other bad input; Locust would print a traceback and exit 1
    if shape is not None:
        if environment.shape_class is not None:
            log.info("voiceload: --shape %s replaces %s", cls.name, type(environment.shape_class).__name__)
        environment.shape_class = shape
        log.info("voiceload: %s", shape.summary())
        if any(getattr(options, name, None) for name in ("num_users", "spawn_rate", "run_time")):
            log.warning("voiceload: -u/--users, -r/--spawn-rate and -t/--run-time do not change --shape %s, "
                        "which sets the users and ends by itself after %g s", cls.name, shape.duration_s)
    web_ui = environment.web_ui
    if web_ui is not None:
        if internals.class_picker_active(web_ui):
            _offer_in_class_picker(environment)
        web_ui.app.before_request(functools.partial(_before_swarm, environment))


def _offer_in_class_picker(environment: Environment) -> None:
    available = environment.available_shape_classes
    if available is None:
        available = environment.available_shape_classes = {}
    for cls in SHAPE_CLASSES:
        try:
            available[cls.__name__] = build(cls, environment.parsed_options, environment)
        except ShapeError as exc:
            log.warning("voiceload: %s is not offered in the class picker: %s", cls.__name__, exc)


def _before_swarm(environment: Environment) -> Response | None:
    """Before the web UI's /swarm: build the shape from the form, or answer with the error."""
    if not internals.is_swarm_request(request):
        return None
    web_ui, runner = environment.web_ui, environment.runner
    if web_ui.web_login:
        from flask_login import current_user

        if not current_user.is_authenticated:
            return None  # Locust's own view turns the request away
    if runner is None or internals.shape_is_running(runner):
        return None  # a shape is running: Locust refuses to change it
    try:
        options = merged_options(environment.parsed_options, request.form)
        if internals.class_picker_active(web_ui):  # the picker chooses; Locust applies the choice after this
            picked = {cls.__name__: cls for cls in SHAPE_CLASSES}.get(request.form.get("shape_class", ""))
            if picked is not None:
                environment.available_shape_classes[picked.__name__] = build(picked, options, environment)
            return None
        cls = shape_class_for(options)
        shape = build(cls, options, environment) if cls else None
    except ShapeError as exc:
        return jsonify({"success": False, "message": str(exc), "host": environment.host})
    current = environment.shape_class
    if current is not None and not isinstance(current, Shape):
        return None  # a locustfile's own shape: not ours to replace
    environment.shape_class = shape
    if shape is None and current is not None and "user_count" not in request.form:
        return jsonify({"success": False, "host": environment.host,
                        "message": "shape none: reload the page to get the users and spawn rate fields, then start"})
    if shape is not None:
        log.info("voiceload: %s", shape.summary())
    return None
