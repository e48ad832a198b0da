"""A preset's `train` map read once into a trainer's frozen config dataclass: every key known, every value of its
field's type, so a typo or a wrong value fails by name before any work instead of deep inside a run."""

from __future__ import annotations

import contextlib
import dataclasses
import types
import typing
from typing import Any, Literal, TypeVar

from ladtalk.errors import InputError

C = TypeVar("C")


def read_config(cls: type[C], values: dict[str, Any], where: str = "train") -> C:
    """`cls(**values)` with each value checked (and widened: int -> float, list -> tuple) against the field's type;
    unknown and missing keys are refused by name. `where` names the map in the messages, e.g. 'train'."""
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - set(fields))
    if unknown:
        raise InputError(f"unknown {where} keys {unknown}; known: {sorted(fields)}")
    missing = sorted(n for n, f in fields.items() if n not in values and f.default is dataclasses.MISSING)
    if missing:
        raise InputError(f"{where} lacks {missing}")
    hints = typing.get_type_hints(cls)
    return cls(**{n: _checked(v, hints[n], f"{where}.{n}") for n, v in values.items()})


def _checked(value: Any, hint: Any, name: str) -> Any:
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        for option in args:
            with contextlib.suppress(InputError):
                return _checked(value, option, name)
    elif origin is Literal:
        if value in args:
            return value
    elif origin is tuple:
        if isinstance(value, (list, tuple)) and len(value) == len(args):
            return tuple(_checked(v, a, name) for v, a in zip(value, args))
    elif hint is float:
        # YAML reads 1e-4 (no dot) as a string; the trainers always took float() of it
        if isinstance(value, (int, float, str)) and not isinstance(value, bool):
            with contextlib.suppress(ValueError):
                return float(value)
    elif hint in (type(None), bool, int, str):
        if type(value) is hint:  # exactly: true is not an integer here
            return value
    raise InputError(f"{name} must be {_describe(hint)}, got {value!r}")


def _describe(hint: Any) -> str:
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_describe(a) for a in args)
    if origin is Literal:
        return " or ".join(repr(a) for a in args)
    if origin is tuple:
        return f"a list of {len(args)}: {', '.join(_describe(a) for a in args)}"
    return {type(None): "null", bool: "true or false", int: "an integer", float: "a number", str: "text"}[hint]


def check_positive(config: Any, *names: str) -> None:
    """InputError unless each named field is above zero (for use in a config's __post_init__)."""
    for name in names:
        if getattr(config, name) <= 0:
            raise InputError(f"train.{name} must be above zero, got {getattr(config, name)}")
