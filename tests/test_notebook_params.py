"""Typed notebook parameters: declared once, read like papermill reads them, checked by name."""

from __future__ import annotations

from typing import Any, Optional

import pytest

from paperlib.checks import InputError
from paperlib.notebook.params import check_given, check_parameters, check_value, declared_parameters

CELL = '''from typing import Any, Optional

data_root: str = "synthetic"        # where the data are
max_images: Optional[int] = 24      # None: every image
flag: bool = True                   # a switch
eps: float = 1e-3                   # a float
names: list[str] = ["duts-te"]      # a list
mapping: dict[str, str] = {}        # a mapping
overrides: dict[str, Any] = {}      # anything by name
'''


def test_declared_parameters_read_name_type_default_and_help():
    specs = declared_parameters(CELL)
    assert [(s.name, s.annotation, s.default, s.help) for s in specs] == [
        ("data_root", "str", "synthetic", "where the data are"),
        ("max_images", "Optional[int]", 24, "None: every image"),
        ("flag", "bool", True, "a switch"),
        ("eps", "float", 1e-3, "a float"),
        ("names", "list[str]", ["duts-te"], "a list"),
        ("mapping", "dict[str, str]", {}, "a mapping"),
        ("overrides", "dict[str, Any]", {}, "anything by name")]
    assert specs[1].type == Optional[int]


def test_an_untyped_parameter_or_a_computed_default_is_refused():
    with pytest.raises(InputError, match="parameter x has no type annotation"):
        declared_parameters("x = 1\n")
    with pytest.raises(InputError, match="parameter y: the default must be a literal"):
        declared_parameters("y: int = len('ab')\n")
    with pytest.raises(InputError, match="unknown type names"):
        declared_parameters("z: os.PathLike = 1\n")[0].type


@pytest.mark.parametrize("value, annotation, ok", [
    (3, "int", True), (True, "int", False), (3.0, "int", False), (3, "float", True), (True, "float", False),
    ("false", "bool", False), (False, "bool", True), (None, "Optional[int]", True), ("3", "Optional[int]", False),
    (["a"], "list[str]", True), ("a", "list[str]", False), (["a", 1], "list[str]", False),
    ({"a": "b"}, "dict[str, str]", True), ("{a: b}", "dict[str, str]", False), ({"a": 1}, "dict[str, str]", False),
    ({"image_size": 64}, "dict[str, Any]", True), ([0.9, 0.99], "Optional[list[float]]", True),
])
def test_check_value(value, annotation, ok):
    if ok:
        assert check_value("p", value, annotation) == value
    else:
        with pytest.raises(InputError, match=r"^parameter p: expected "):
            check_value("p", value, annotation)


def test_messages_say_what_to_type_instead():
    with pytest.raises(InputError, match=r"got the string 'false' \(write True or False, capitalised\)"):
        check_value("flag", "false", bool)
    with pytest.raises(InputError, match=r"use -y"):
        check_value("names", "[duts-te, ecssd]", list[str])


def test_check_given_refuses_unknown_names_with_a_suggestion():
    specs = declared_parameters(CELL)
    assert check_given({"max_images": None}, specs)["max_images"] is None
    with pytest.raises(InputError, match=r"unknown parameter 'max_image' \(did you mean 'max_images'\?\)"):
        check_given({"max_image": 2}, specs)


def test_the_in_notebook_guard_reads_the_injected_cell():
    """In a kernel: the annotations of the parameters cell, and papermill's injected cell in `_ih`."""
    namespace: dict[str, Any] = {}
    exec(compile(CELL, "<parameters>", "exec"), namespace)
    injected = "# Parameters\nmax_images = 5\nflag = False\n"
    exec(injected, namespace)
    namespace["_ih"] = ["", CELL, injected]
    got = check_parameters(namespace)
    assert got["max_images"] == 5 and got["flag"] is False and list(got) == [s.name for s in declared_parameters(CELL)]
    exec("max_imagez = 5\n", namespace)
    namespace["_ih"].append("# Parameters\nmax_imagez = 5\n")
    with pytest.raises(InputError, match="unknown parameter 'max_imagez'"):
        check_parameters(namespace)
    namespace["_ih"].append("# Parameters\nflag = 'false'\n")
    namespace["flag"] = "false"
    with pytest.raises(InputError, match="parameter flag: expected bool"):
        check_parameters(namespace)


def test_a_notebook_without_typed_parameters_is_refused():
    with pytest.raises(InputError, match="declares no typed parameters"):
        check_parameters({"x": 1})
