"""Parameter checks shared by the run configs (lib/config.py) and the tasks (lib/tasks/).

Used by: every config and task, when it is built.
"""
import dataclasses
import math


def check_field_types(obj) -> None:
    """Each field of the dataclass `obj` holds its annotated type, or a one-line error names
    the parameter: an int field takes no bool, float or str (V=2.5, V='12', V=True); a float
    field takes a finite int or float; a str field a str. Other annotations are not checked."""
    owner = type(obj).__name__
    for field in dataclasses.fields(obj):
        value, kind = getattr(obj, field.name), field.type
        if value is None and kind == float | None:
            continue
        if kind is int and (isinstance(value, bool) or not isinstance(value, int)):
            raise TypeError(f"{owner}: {field.name} must be an integer, got {value!r}")
        if kind in (float, float | None):
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise TypeError(f"{owner}: {field.name} must be a number, got {value!r}")
            if not math.isfinite(value):
                raise ValueError(f"{owner}: {field.name} must be finite, got {value!r}")
        if kind is str and not isinstance(value, str):
            raise TypeError(f"{owner}: {field.name} must be a string, got {value!r}")


def check_seed(name: str, value) -> None:
    """A chapter's seed parameter: a non-negative integer, or a one-line error naming it."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{name} must be a non-negative integer, got {value!r}")
