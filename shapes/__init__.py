"""Load shapes: realistic load over time, selected with `--shape NAME` (headless and in the web UI).

    ramp / step, wave, burst, spike, sustained / soak, stability, callcenter, batches   (one per file)

Every shape is a pure schedule `users_at(elapsed_s) -> (users, spawn_rate, phase) | None`, ends by
itself after `duration_s`, and names its current phase in `phase` (e.g. "step 3 (40 users)", "wave 2
peak", "hour 09 (420 calls/h)") for the report's per-phase split. In a locustfile:

    @events.init_command_line_parser.add_listener
    def _options(parser): add_shape_options(parser)

    @events.init.add_listener
    def _init(environment, **_kw): install_shape(environment)

Importing this package does not import Locust (whose import monkey-patches with gevent); only
install_shape does, when called.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from shapes.base import Shape, ShapeError
from shapes.options import SHAPES, add_shape_options, default_options, shape_from_options

if TYPE_CHECKING:
    from locust.env import Environment

__all__ = ["SHAPES", "Shape", "ShapeError", "add_shape_options", "default_options", "install_shape",
           "shape_from_options"]


def install_shape(environment: Environment) -> None:
    """At Locust's init: make Locust run the --shape shape (see shapes/install.py)."""
    from shapes.install import install_shape as install

    install(environment)
