"""Conditions in CEL, compiled once at load and checked against the names a policy may use.

CEL (the Common Expression Language of Kubernetes admission, Envoy and Google IAM) is safe by
construction: no loops, no I/O, no side effects. We use the Rust-backed binding because a
compiled program evaluates in well under a microsecond once its variables are bound.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from typing import Any

import cel

ROOTS: tuple[str, ...] = (
    "args",
    "boundary",
    "call",
    "context",
    "intent",
    "principal",
    "resource",
    "state",
    "task",
)
# Functions the native CEL runtime provides; macros (has, all, exists, ...) are not listed
# by the compiler and need no entry.
FUNCTIONS: frozenset[str] = frozenset(
    {
        "size",
        "contains",
        "startsWith",
        "endsWith",
        "matches",
        "int",
        "uint",
        "double",
        "string",
        "bytes",
        "bool",
        "timestamp",
        "duration",
        "type",
        "dyn",
        "getFullYear",
        "getMonth",
        "getDayOfYear",
        "getDayOfMonth",
        "getDate",
        "getDayOfWeek",
        "getHours",
        "getMinutes",
        "getSeconds",
        "getMilliseconds",
    }
)
_TYPE_NAMES = frozenset(
    {"int", "uint", "double", "string", "bytes", "bool", "list", "map", "null_type", "type"}
)
_MACRO_VAR = re.compile(r"\.\s*(?:all|exists|exists_one|map|filter)\s*\(\s*([A-Za-z_]\w*)\s*,")
_POSITION = re.compile(r"<input>:(\d+):(\d+):\s*(.*?)(?:\n|$)")


@dataclass(frozen=True, slots=True)
class Condition:
    """A compiled CEL condition and the policy roots it reads."""

    source: str
    program: Any
    roots: frozenset[str]


@dataclass(frozen=True, slots=True)
class ExprProblem:
    """Why a condition was refused, with a suggested fix."""

    message: str
    fix: str


def compile_condition(source: str) -> Condition | list[ExprProblem]:
    """Compile ``source``; return the condition, or every problem found in it."""
    try:
        program = cel.compile(source)
    except (ValueError, RuntimeError) as err:
        return [_syntax_problem(source, str(err))]
    bound = set(_MACRO_VAR.findall(source))
    problems: list[ExprProblem] = []
    roots = set()
    for name in program.variables():
        if name in ROOTS:
            roots.add(name)
        elif name not in bound and name not in _TYPE_NAMES:
            problems.append(_unknown("name", name, ROOTS))
    for name in program.functions():
        if name[0] not in "_@!" and name not in FUNCTIONS:
            problems.append(_unknown("function", name, sorted(FUNCTIONS)))
    return problems or Condition(source, program, frozenset(roots))


def _syntax_problem(source: str, error: str) -> ExprProblem:
    match = _POSITION.search(error)
    if match is None:
        return ExprProblem(
            f"condition {source!r} does not compile: {error.splitlines()[0]}",
            "write a CEL expression, e.g. args.amount <= 500.0",
        )
    column = int(match.group(2))
    pointer = f"{source}\n      {' ' * (column - 1)}^"
    return ExprProblem(
        f"condition does not compile at column {column}: {match.group(3)}\n      {pointer}",
        "correct the CEL syntax at the caret",
    )


def _unknown(kind: str, name: str, known: Any) -> ExprProblem:
    near = difflib.get_close_matches(name, list(known), n=1)
    hint = f"did you mean '{near[0]}'? " if near else ""
    return ExprProblem(
        f"unknown {kind} '{name}' in condition", f"{hint}conditions may use {', '.join(known)}"
    )
