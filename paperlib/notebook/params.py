"""Typed notebook parameters: declared once in the cell tagged ``parameters``, checked by name.

A notebook declares each parameter with a type annotation and a one-line comment::

    data_root: str = "synthetic"        # a folder with the official layouts, or "synthetic"
    max_images: Optional[int] = 24      # None: every image

papermill reads the same lines for ``--help-notebook`` (its pattern takes ``Optional[int]``,
``list[str]``, ``dict[str, str]``, not ``int | None``). Right after that cell one package call,
:func:`check_parameters`, refuses what papermill lets through: a mistyped name (papermill only
warns and runs the default), a value of the wrong type, and the strings that ``-p`` produces
where a boolean, list or mapping belongs (``-p flag false`` is the string "false", which Python
counts as true). The runner (:mod:`paperlib.notebook.run`) applies the same checks before it
starts a kernel, from the source alone (:func:`declared_parameters`).

Public API
----------
``ParamSpec``                     one declared parameter: name, annotation text, default, help.
``declared_parameters(source)``   the specs of a parameters cell's source, in order.
``check_value(name, value, annotation)``  the value, or an InputError naming the parameter.
``check_given(given, specs)``     check a run's parameters against the specs (unknown names, types).
``check_parameters(namespace)``   the in-notebook guard: check the kernel's namespace.
"""

from __future__ import annotations

import ast
import difflib
import types
import typing
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

from ..checks import InputError, is_int, is_number, require

# papermill writes the injected cell with this first line (papermill.translators.Translator.codify).
_INJECTED_HEADER = "# Parameters"
_TYPE_NAMES = {"str": str, "int": int, "float": float, "bool": bool, "Any": Any,
               "Optional": typing.Optional, "Union": typing.Union, "list": list, "dict": dict,
               "tuple": tuple, "List": typing.List, "Dict": typing.Dict}


@dataclass(frozen=True)
class ParamSpec:
    """One parameter as the notebook declares it."""

    name: str
    annotation: str     # source text, e.g. "Optional[int]"
    default: Any
    help: str

    @property
    def type(self):
        """The annotation as a typing object (evaluated over a fixed set of type names only)."""
        return _parse_annotation(self.annotation)


def _parse_annotation(text: str):
    tree = ast.parse(text, mode="eval")
    names = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)}
    unknown = names - set(_TYPE_NAMES) - {"None"}
    require(not unknown, f"annotation {text!r} uses unknown type names {sorted(unknown)}")
    return eval(compile(tree, "<annotation>", "eval"), {"__builtins__": {}, "None": None}, dict(_TYPE_NAMES))


def declared_parameters(source: str) -> list[ParamSpec]:
    """The typed parameters a ``parameters`` cell declares, in order.

    Args:
        source: the cell's Python source (top-level ``name: type = value  # help`` lines).

    Returns:
        One :class:`ParamSpec` per annotated assignment; the default is the literal's value.

    Raises:
        InputError: a top-level assignment without a type annotation, or a default that is not a
            literal (a parameter's default must be readable without running the notebook).
    """
    tree = ast.parse(source)
    lines = source.splitlines()
    specs = []
    for node in tree.body:
        if isinstance(node, ast.Assign):
            names = ", ".join(ast.unparse(t) for t in node.targets)
            raise InputError(f"parameter {names} has no type annotation (write `{names}: type = ...`)")
        if not isinstance(node, ast.AnnAssign) or not isinstance(node.target, ast.Name):
            continue
        name = node.target.id
        try:
            default = ast.literal_eval(node.value) if node.value is not None else None
        except ValueError:
            raise InputError(f"parameter {name}: the default must be a literal") from None
        line = lines[node.end_lineno - 1]
        comment = line[node.end_col_offset:].strip()
        specs.append(ParamSpec(name, ast.unparse(node.annotation), default,
                               comment[1:].strip() if comment.startswith("#") else ""))
    return specs


def _describe(tp) -> str:
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if tp is type(None) or tp is None:
        return "None"
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_describe(a) for a in args)
    if origin is not None:
        return f"{origin.__name__}[{', '.join(_describe(a) for a in args)}]"
    return getattr(tp, "__name__", str(tp))


def _shown(value) -> str:
    return f"the string {value!r}" if isinstance(value, str) else f"{value!r} ({type(value).__name__})"


def _hint(value, tp) -> str:
    """What to type instead, for the strings papermill's ``-p`` produces."""
    if not isinstance(value, str):
        return ""
    origin = typing.get_origin(tp)
    wanted = {typing.get_origin(a) or a for a in typing.get_args(tp)} if origin in (typing.Union, types.UnionType) \
        else {origin or tp}
    if wanted & {list, dict, tuple}:
        return " (papermill's -p passes lists and mappings as strings: use -y 'name: [a, b]')"
    if bool in wanted and value.lower() in ("true", "false", "yes", "no", "0", "1"):
        return " (write True or False, capitalised)"
    if wanted & {int, float} or type(None) in wanted:
        return " (a number, or None where allowed)"
    return ""


def _matches(value, tp) -> bool:
    if tp is Any:
        return True
    if tp is type(None) or tp is None:
        return value is None
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        return any(_matches(value, a) for a in args)
    if tp is bool:
        return isinstance(value, bool)
    if tp is int:
        return is_int(value)
    if tp is float:
        return is_number(value)
    if tp is str:
        return isinstance(value, str)
    if origin in (list, tuple) or tp in (list, tuple):
        return isinstance(value, (list, tuple)) and all(_matches(v, args[0]) for v in value) if args \
            else isinstance(value, (list, tuple))
    if origin is dict or tp is dict:
        if not isinstance(value, dict):
            return False
        return not args or all(_matches(k, args[0]) and _matches(v, args[1]) for k, v in value.items())
    return isinstance(value, tp)


def check_value(name: str, value, annotation) -> Any:
    """``value`` if it has the declared type, else an InputError naming the parameter.

    Args:
        name: the parameter's name, for the message.
        value: what the run passed.
        annotation: a typing object or its source text ("Optional[int]").
    """
    tp = _parse_annotation(annotation) if isinstance(annotation, str) else annotation
    if not _matches(value, tp):
        raise InputError(f"parameter {name}: expected {_describe(tp)}, got {_shown(value)}{_hint(value, tp)}")
    return value


def _unknown(names: Sequence[str], declared: Sequence[str]) -> None:
    for name in names:
        close = difflib.get_close_matches(name, declared, n=1)
        raise InputError(f"unknown parameter {name!r}" + (f" (did you mean {close[0]!r}?)" if close else "")
                         + f"; this notebook takes: {', '.join(declared)}")


def check_given(given: Mapping[str, Any], specs: Sequence[ParamSpec]) -> dict[str, Any]:
    """Check a run's parameters against the declared specs before anything runs.

    Returns:
        Every parameter's value for the run: the given ones over the defaults.
    """
    by_name = {s.name: s for s in specs}
    _unknown([n for n in given if n not in by_name], list(by_name))
    for name, value in given.items():
        check_value(name, value, by_name[name].type)
    return {s.name: given.get(s.name, s.default) for s in specs}


def _injected_names(namespace: Mapping) -> list[str]:
    """Names the most recent papermill-injected cell assigned (IPython's input history ``_ih``)."""
    for cell in reversed(namespace.get("_ih") or []):
        if cell.lstrip().startswith(_INJECTED_HEADER):
            tree = ast.parse(cell)
            return [t.id for node in tree.body if isinstance(node, ast.Assign)
                    for t in node.targets if isinstance(t, ast.Name)]
    return []


def check_parameters(namespace: Mapping[str, Any]) -> dict[str, Any]:
    """The in-notebook guard, called right after the parameters cell with ``globals()``.

    Refuses a name that papermill injected but the cell does not declare, and any declared
    parameter whose value does not have its annotated type, with one message naming it.

    Returns:
        ``{name: value}`` of every declared parameter, in the declared order.
    """
    declared = dict(namespace.get("__annotations__") or {})
    require(declared, "the parameters cell declares no typed parameters (write `name: type = value`)")
    _unknown([n for n in _injected_names(namespace) if n not in declared], list(declared))
    return {name: check_value(name, namespace.get(name), tp) for name, tp in declared.items()}
