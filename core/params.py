"""Declared parameters: the default, the type and the valid range of every parameter of every
explainer, metric and study, next to each other, checked in one place.

    parameters = {"n_samples": Int(1000, low=1), "segmentation": Choice("slic", ("slic", "grid"))}

`check` returns the value in its canonical form (a float for an int parameter is refused, an int for
a float one becomes a float) or raises a one-line
ParameterError naming the owner, the parameter, the value and what is allowed. The suite loader,
`bench validate`, `bench explain -p` and `bench score --param` all construct explainers and metrics,
so they all go through it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from explainbench.core.errors import BenchError


class ParameterError(BenchError):
    """A parameter value outside its declared type or range."""


@dataclass(frozen=True)
class Param:
    default: Any
    kind: str  # "int", "float", "str", "bool", "list" or "any"
    low: float | None = None
    high: float | None = None
    low_open: bool = False  # low itself is not allowed
    high_open: bool = False
    choices: tuple = ()  # the allowed values of a str parameter; literals beside a number's range
    nullable: bool = False  # None (YAML null) is allowed
    item: Param | None = None  # a list's elements
    min_items: int = 1
    doc: str = ""

    def describe(self) -> str:
        """What is allowed, in words: `an integer >= 1`, `one of slic, grid`, ..."""
        if self.kind == "list":
            size = "a non-empty list" if self.min_items == 1 else f"a list of {self.min_items} or more"
            text = f"{size}, each {self.item.describe()}"
        elif self.kind in ("int", "float"):
            text = "an integer" if self.kind == "int" else "a number"
            if self.low is not None and self.high is not None:
                text += (f" in {'(' if self.low_open else '['}{self.low:g}, {self.high:g}"
                         f"{')' if self.high_open else ']'}")
            elif self.low is not None:
                text += f" {'>' if self.low_open else '>='} {self.low:g}"
            elif self.high is not None:
                text += f" {'<' if self.high_open else '<='} {self.high:g}"
        elif self.kind == "str":
            text = "one of " + ", ".join(map(str, self.choices)) if self.choices else "a string"
        elif self.kind == "bool":
            text = "true or false"
        else:
            text = "any value"
        if self.kind != "str" and self.choices:
            text += " or " + " or ".join(map(repr, self.choices))
        if self.nullable:
            text += " or null"
        return text

    def check(self, value: Any, name: str, owner: str) -> Any:
        ok, canonical = self._canonical(value)
        if not ok:
            raise ParameterError(f"{owner}: parameter {name} = {value!r} is not allowed; {name} "
                                 f"must be {self.describe()}")
        return canonical

    def _canonical(self, value: Any) -> tuple[bool, Any]:
        if value is None:
            return self.nullable or self.kind == "any", None
        if self.choices and _is_literal(value) and value in self.choices:
            return True, value
        if self.kind == "any":
            return True, value
        if self.kind == "bool":
            return isinstance(value, bool), value
        if self.kind == "str":
            return isinstance(value, str) and not self.choices, value
        if self.kind == "list":
            if not isinstance(value, (list, tuple)) or len(value) < self.min_items:
                return False, value
            items = [self.item._canonical(v) for v in value]
            return all(ok for ok, _ in items), [v for _, v in items]
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return False, value
        if self.kind == "int":
            if not isinstance(value, int):
                return False, value
        else:
            value = float(value)
            if not math.isfinite(value):
                return False, value
        return self._in_range(value), value

    def _in_range(self, value: float) -> bool:
        if self.low is not None and (value < self.low or (self.low_open and value == self.low)):
            return False
        if self.high is not None and (value > self.high or (self.high_open and value == self.high)):
            return False
        return True


def _is_literal(value: Any) -> bool:
    return isinstance(value, (str, int, float)) and not isinstance(value, bool)


def Int(default, low=None, high=None, *, also=(), nullable=False, doc="") -> Param:
    return Param(default, "int", low, high, choices=tuple(also), nullable=nullable, doc=doc)


def Float(default, low=None, high=None, *, low_open=False, high_open=False, also=(),
          nullable=False, doc="") -> Param:
    return Param(default, "float", low, high, low_open, high_open, tuple(also), nullable, doc=doc)


def Choice(default, choices, *, nullable=False, doc="") -> Param:
    return Param(default, "str", choices=tuple(choices), nullable=nullable, doc=doc)


def Bool(default, doc="") -> Param:
    return Param(default, "bool", doc=doc)


def Seq(default, item: Param, *, min_items=1, nullable=False, doc="") -> Param:
    return Param(default, "list", item=item, min_items=min_items, nullable=nullable, doc=doc)


def Any_(default, doc="") -> Param:
    return Param(default, "any", doc=doc)


def inferred(default: Any) -> Param:
    """A parameter declared by its default alone (users' plugins): its type, no range."""
    if isinstance(default, bool):
        return Bool(default)
    if isinstance(default, int):
        return Int(default)
    if isinstance(default, float):
        return Float(default)
    if isinstance(default, str):
        return Param(default, "str")
    return Any_(default)


def declared(parameters: dict[str, Any]) -> dict[str, Param]:
    """Every entry as a Param (plain defaults are inferred)."""
    return {k: v if isinstance(v, Param) else inferred(v) for k, v in parameters.items()}


def check_all(parameters: dict[str, Param], given: dict[str, Any], owner: str,
              kind: str = "parameter") -> dict[str, Any]:
    """Defaults overridden by `given`, every value checked; an unknown name is one line too."""
    unknown = sorted(set(given) - set(parameters))
    if unknown:
        valid = ", ".join(sorted(parameters)) or "none"
        raise ParameterError(f"unknown {kind} {', '.join(map(repr, unknown))} for {owner}; "
                             f"valid {kind}s: {valid}")
    merged = {k: p.default for k, p in parameters.items()} | dict(given)
    return {name: parameters[name].check(value, name, owner) for name, value in merged.items()}


def brief(p: Param) -> str:
    """The range in a few characters, for tables: `1..100000`, `>0`, `slic | grid`, `bool`."""
    if p.kind == "list":
        return f"[{brief(p.item)}]"
    literals = [str(c) for c in p.choices]
    if p.kind in ("int", "float"):
        low = "" if p.low is None else f"{p.low:g}"
        high = "" if p.high is None else f"{p.high:g}"
        if p.kind == "float" and (p.low_open or p.high_open) and low and high:
            text = f"{'(' if p.low_open else '['}{low},{high}{')' if p.high_open else ']'}"
        elif low and high:
            text = f"{low}..{high}"
        elif low:
            text = f"{'>' if p.low_open else '>='}{low}"
        elif high:
            text = f"{'<' if p.high_open else '<='}{high}"
        else:
            text = p.kind
        literals.insert(0, text)
    elif p.kind in ("bool", "any") or (p.kind == "str" and not p.choices):
        literals.insert(0, p.kind)
    if p.nullable:
        literals.append("null")
    return " | ".join(literals)


def summary(parameters: dict[str, Param]) -> str:
    """`n_samples=1000 (1..100000), segmentation=slic (slic | grid)` for `bench list`."""
    return ", ".join(f"{k}={p.default} ({brief(p)})" for k, p in parameters.items())
