"""Declared parameters: types, ranges, canonical values and one-line errors."""

from __future__ import annotations

import pytest

from explainbench.core.params import (Bool, Choice, Float, Int, ParameterError, Seq, check_all,
                                      declared)


@pytest.mark.parametrize("param,value,expected", [
    (Int(5, 1, 10), 1, 1), (Int(5, 1, 10), 10, 10),
    (Float(0.5, 0, 1, low_open=True), 1, 1.0),  # an int for a float becomes a float
    (Int("default", 1, 28, also=("default",)), "default", "default"),
    (Choice("slic", ("slic", "grid")), "grid", "grid"),
    (Float(0.01, 0, low_open=True, nullable=True), None, None),
    (Seq([1], Int(1, 1)), (3, 4), [3, 4]), (Bool(True), False, False),
])
def test_allowed_values_come_back_canonical(param, value, expected):
    got = param.check(value, "p", "explainer 'x'")
    assert got == expected and type(got) is type(expected)


@pytest.mark.parametrize("param,value,allowed", [
    (Int(5, 1, 10), 0, "an integer in [1, 10]"),
    (Int(5, 1, 10), 11, "an integer in [1, 10]"),
    (Int(5, 1), 2.0, "an integer >= 1"),  # an integer-valued float is not an integer
    (Int(5, 1), True, "an integer >= 1"),  # nor is a bool
    (Float(0.5, 0, 1, low_open=True), 0, "a number in (0, 1]"),
    (Float(0.5, 0), float("nan"), "a number >= 0"),
    (Choice("slic", ("slic", "grid")), "quickshift", "one of slic, grid"),
    (Int("default", 1, 28, also=("default",)), "big", "an integer in [1, 28] or 'default'"),
    (Seq([1], Int(1, 1)), [], "a non-empty list, each an integer >= 1"),
    (Seq([1], Int(1, 1)), [1, 0], "a non-empty list, each an integer >= 1"),
    (Bool(True), "yes", "true or false"),
    (Int(5, 1), None, "an integer >= 1"),
])
def test_a_value_outside_its_declaration_is_one_line_naming_it(param, value, allowed):
    with pytest.raises(ParameterError) as info:
        param.check(value, "n_samples", "explainer 'lime'")
    message = str(info.value)
    assert "\n" not in message
    assert message == (f"explainer 'lime': parameter n_samples = {value!r} is not allowed; "
                       f"n_samples must be {allowed}")


def test_check_all_merges_defaults_and_refuses_unknown_names():
    parameters = declared({"n_samples": Int(100, 1), "mode": "fast"})  # "fast": inferred str
    assert check_all(parameters, {"n_samples": 7}, "x") == {"n_samples": 7, "mode": "fast"}
    with pytest.raises(ParameterError, match="unknown setting 'nsamples' for x; valid settings: "
                                             "mode, n_samples"):
        check_all(parameters, {"nsamples": 7}, "x", kind="setting")
    with pytest.raises(ParameterError, match="mode must be a string"):
        check_all(parameters, {"mode": 3}, "x")
