"""YAML to plain data, remembering the line of every value and refusing duplicate keys.

Duplicate keys are refused rather than resolved: two readers that keep different copies of
a key are a classic way to make a policy say one thing and mean another.
"""

from __future__ import annotations

from typing import Any

import yaml

Path = tuple[str | int, ...]


class YamlProblem(ValueError):
    """The text is not YAML we accept; ``line`` is 1-based."""

    def __init__(self, line: int | None, message: str) -> None:
        self.line = line
        self.message = message
        super().__init__(message)


def parse_yaml(text: str) -> tuple[Any, dict[Path, int]]:
    """Parse one YAML document into plain data and a map from data path to 1-based line."""
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark
        line = mark.line + 1 if mark is not None else None
        raise YamlProblem(line, f"not valid YAML: {err.problem}") from None
    except yaml.YAMLError as err:
        raise YamlProblem(None, f"not valid YAML: {err}") from None
    if node is None:
        raise YamlProblem(1, "the file is empty")
    lines: dict[Path, int] = {}
    return _build(node, (), lines), lines


def _build(node: yaml.Node, path: Path, lines: dict[Path, int]) -> Any:
    lines[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        out: dict[str, Any] = {}
        for key_node, value_node in node.value:
            key = _scalar(key_node)
            if not isinstance(key, str):
                raise YamlProblem(key_node.start_mark.line + 1, f"key {key!r} must be a string")
            if key in out:
                raise YamlProblem(key_node.start_mark.line + 1, f"duplicate key '{key}'")
            out[key] = _build(value_node, (*path, key), lines)
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_build(item, (*path, i), lines) for i, item in enumerate(node.value)]
    return _scalar(node)


def _scalar(node: yaml.Node) -> Any:
    if not isinstance(node, yaml.ScalarNode):
        raise YamlProblem(node.start_mark.line + 1, "keys must be plain scalars")
    return yaml.SafeLoader(node.value).construct_object(node, deep=True)
