"""The shapes' command-line options (each also an environment variable and a web UI field), and building
the chosen shape from parsed options with a one-line ShapeError for bad values. No Locust import here."""

from __future__ import annotations

import argparse
import math
from argparse import Namespace
from collections.abc import Mapping
from typing import Any

from shapes.base import SPAWN_RATE_OPTION, Shape, ShapeError, ShapeOption
from shapes.batches import BatchShape
from shapes.burst import BurstShape
from shapes.callcenter import CallCenterShape
from shapes.ramp import RampShape
from shapes.spike import SpikeShape
from shapes.stability import StabilityShape
from shapes.sustained import SustainedShape
from shapes.wave import WaveShape

SHAPE_CLASSES: tuple[type[Shape], ...] = (RampShape, WaveShape, BurstShape, SpikeShape, SustainedShape, StabilityShape,
                                          CallCenterShape, BatchShape)
SHAPES: dict[str, type[Shape]] = {name: cls for cls in SHAPE_CLASSES for name in (cls.name, *cls.aliases)}
NO_SHAPE = "none"
SHAPE_OPTION = ShapeOption("--shape", str, NO_SHAPE,
                           "load shape: users over time, ending by itself; its parameters are the --<shape>-* options "
                           "(none: Locust's users, spawn rate and run time)", (*SHAPES, NO_SHAPE))
ALL_OPTIONS: tuple[ShapeOption, ...] = (SHAPE_OPTION, SPAWN_RATE_OPTION,
                                        *(option for cls in SHAPE_CLASSES for option in cls.options))


def add_shape_options(parser: Any) -> None:
    """Add --shape and every shape's options to Locust's parser (env var VOICELOAD_<DEST>, shown in the
    web UI). Adding them twice to one parser is a no-op, so two locustfiles may both call this."""
    for option in ALL_OPTIONS:
        try:
            parser.add_argument(option.flag, type=option.type, default=option.default, choices=option.choices,
                                env_var=option.env_var, include_in_web_ui=True, help=option.help)
        except argparse.ArgumentError:
            if option is SHAPE_OPTION:
                return  # already added to this parser
            raise


def default_options(**values: Any) -> Namespace:
    """The shape options as the command line would give them without flags, with `values` on top."""
    unknown = set(values) - {option.dest for option in ALL_OPTIONS}
    if unknown:
        raise TypeError(f"not shape options: {', '.join(sorted(unknown))}")
    return Namespace(**{**{option.dest: option.default for option in ALL_OPTIONS}, **values})


def shape_class_for(options: Namespace) -> type[Shape] | None:
    """The class of the shape `options.shape` names, None for none."""
    name = getattr(options, "shape", NO_SHAPE) or NO_SHAPE
    if name == NO_SHAPE:
        return None
    if name not in SHAPES:
        raise ShapeError(f"--shape must be one of {', '.join(SHAPE_OPTION.choices or ())}, got {name!r}")
    return SHAPES[name]


def shape_from_options(options: Namespace) -> Shape | None:
    """The shape chosen by --shape, built from its options; None for --shape none. Bad values raise
    ShapeError with one line naming the option."""
    cls = shape_class_for(options)
    return cls.from_options(options) if cls else None


def merged_options(options: Namespace, form: Mapping[str, str]) -> Namespace:
    """A copy of `options` with the shape options the web UI form sends (text) converted to their types."""
    merged = Namespace(**vars(options))
    for option in ALL_OPTIONS:
        if option.dest in form:
            setattr(merged, option.dest, convert(option, form[option.dest]))
    return merged


def convert(option: ShapeOption, text: str) -> Any:
    """A form field's text as the option's type, or a ShapeError that names the option."""
    text = text.strip()
    if option.type is int:
        try:
            return int(text)
        except ValueError:
            raise ShapeError(f"{option.flag} must be a whole number, got {text!r}") from None
    if option.type is float:
        try:
            value = float(text)
        except ValueError:
            value = math.nan
        if not math.isfinite(value):
            raise ShapeError(f"{option.flag} must be a number, got {text!r}")
        return value
    if option.choices and text not in option.choices:
        raise ShapeError(f"{option.flag} must be one of {', '.join(option.choices)}, got {text!r}")
    return text
