"""Read policy files, report every problem at once, and compile them into one OutcomePolicy."""

from __future__ import annotations

import difflib
import hashlib
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from guardrail._errors import PolicyError, PolicyProblem
from guardrail._model import CredentialGrant, Effect, LoggingRequirement, Principal, Task
from guardrail._policy._compiled import Example, OutcomePolicy, Provider, Rule, ToolSpec
from guardrail._policy._expr import Condition, compile_condition
from guardrail._policy._reason import ReasonTemplate, parse_template
from guardrail._policy._schema import FIELD_FIXES, LoggingSpec, PolicyDocument, RuleSpec
from guardrail._policy._yaml import Path as DataPath
from guardrail._policy._yaml import YamlProblem, parse_yaml

BUILTIN_INTENTS = frozenset(
    {
        "approve_integration",
        "create_record",
        "delete_record",
        "deploy",
        "issue_credential",
        "purchase",
        "read",
        "rotate_secret",
        "send_message",
        "transfer_funds",
        "unknown",
        "update_record",
    }
)
_SUFFIXES = (".yaml", ".yml")
_TOOL_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]{0,127}$")


@dataclass
class _File:
    """One policy file on its way to compilation, with the problems found so far."""

    path: str
    text: str
    lines: dict[DataPath, int] = field(default_factory=dict)
    data: Any = None
    doc: PolicyDocument | None = None
    problems: list[PolicyProblem] = field(default_factory=list)

    def line(self, loc: DataPath) -> int | None:
        while loc not in self.lines and loc:
            loc = loc[:-1]
        return self.lines.get(loc)

    def problem(self, loc: DataPath, message: str, fix: str, rule_id: str | None = None) -> None:
        self.problems.append(PolicyProblem(self.path, self.line(loc), message, fix, rule_id))


def load_policy(*paths: str | os.PathLike[str]) -> OutcomePolicy:
    """Load policy files (or directories of ``*.yaml`` files) into one compiled policy.

    Files compose deterministically: sorted by path, rules unioned, tool maps merged.

    Raises:
        PolicyError: listing every problem in every file (file:line, rule id, fix).
    """
    if not paths:
        raise PolicyError(
            [
                PolicyProblem(
                    "<none>",
                    None,
                    "no policy path given",
                    "pass a policy file or a directory of them",
                )
            ]
        )
    files: list[_File] = []
    problems: list[PolicyProblem] = []
    for path in _expand(paths, problems):
        try:
            files.append(_File(str(path), path.read_text(encoding="utf-8")))
        except (OSError, UnicodeDecodeError) as err:
            problems.append(
                PolicyProblem(
                    str(path),
                    None,
                    f"cannot be read ({err})",
                    "check the path and that the file is UTF-8 text",
                )
            )
    return _compile(files, problems)


def parse_policy(text: str, *, source: str = "<policy>") -> OutcomePolicy:
    """Compile a policy from YAML text; ``source`` names it in error messages."""
    return _compile([_File(source, text)], [])


def _expand(paths: Iterable[str | os.PathLike[str]], problems: list[PolicyProblem]) -> list[Path]:
    found: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            inside = sorted(p for p in path.iterdir() if p.suffix in _SUFFIXES and p.is_file())
            if not inside:
                problems.append(
                    PolicyProblem(
                        str(path),
                        None,
                        "directory holds no *.yaml policy",
                        "add a policy file or point at one",
                    )
                )
            found.extend(inside)
        elif path.is_file():
            found.append(path)
        else:
            problems.append(
                PolicyProblem(str(path), None, "no such file or directory", "check the path")
            )
    return sorted(set(found))


def _compile(files: list[_File], problems: list[PolicyProblem]) -> OutcomePolicy:
    for f in files:
        _validate(f)
    vocabulary = set(BUILTIN_INTENTS)
    for f in files:
        if f.doc:
            vocabulary |= set(f.doc.intents) | {t.intent for t in f.doc.tools.values()}
    tools: dict[str, ToolSpec] = {}
    providers: dict[str, Provider] = {}
    rules: list[Rule] = []
    examples: list[Example] = []
    for f in files:
        rules.extend(_rules(f, vocabulary))
        if f.doc:
            _merge_tools(f, f.doc, tools)
            _merge_providers(f, f.doc, providers)
            examples.extend(_examples(f, f.doc))
    _check_unique_ids(files, rules)
    problems.extend(p for f in files for p in f.problems)
    if problems:
        raise PolicyError(sorted(problems, key=lambda p: (p.path, p.line or 0)))
    return _assemble(files, rules, tools, examples, providers)


def _validate(f: _File) -> None:
    try:
        f.data, f.lines = parse_yaml(f.text)
    except YamlProblem as err:
        f.problems.append(
            PolicyProblem(f.path, err.line, err.message, "correct the YAML at that line")
        )
        return
    try:
        f.doc = PolicyDocument.model_validate(f.data)
    except ValidationError as err:
        for e in err.errors():
            loc = tuple(e["loc"])
            f.problem(loc, _describe(e, loc), _fix_for(e, loc), _rule_id(f.data, loc))


def _describe(error: Any, loc: DataPath) -> str:
    where = ".".join(str(p) for p in loc) or "document"
    if error["type"] == "extra_forbidden":
        return f"unknown field '{loc[-1]}' at {where}"
    return f"{where}: {error['msg']}"


def _fix_for(error: Any, loc: DataPath) -> str:
    field_name = str(loc[-1]) if loc else ""
    if error["type"] == "extra_forbidden":
        known = _known_fields(loc[:-1])
        near = difflib.get_close_matches(field_name, known, n=1)
        hint = f"did you mean '{near[0]}'? " if near else ""
        return f"{hint}known fields here: {', '.join(known)}"
    if error["type"] == "missing":
        return f"add '{field_name}'"
    if error["type"] == "string_type":
        return (
            "quote the value: YAML reads unquoted yes, no, on, off, numbers and dates as "
            "other types"
        )
    return FIELD_FIXES.get(field_name, "see the policy language reference in the README")


def _known_fields(parent: DataPath) -> list[str]:
    from guardrail._policy import _schema

    model: Any = PolicyDocument
    for part in parent:
        if isinstance(part, int):
            continue
        info = model.model_fields.get(part)
        if info is None:
            break
        model = {
            "metadata": _schema.MetadataSpec,
            "rules": RuleSpec,
            "logging": LoggingSpec,
            "tools": _schema.ToolSpecModel,
            "examples": _schema.ExampleSpec,
        }.get(part, model)
    if model is _schema.ToolSpecModel and parent and parent[-1] == "tools":
        return []
    return sorted(info.alias or name for name, info in model.model_fields.items())


def _rule_id(data: Any, loc: DataPath) -> str | None:
    if len(loc) >= 2 and loc[0] == "rules" and isinstance(loc[1], int):
        try:
            rule_id = data["rules"][loc[1]].get("id")
            return rule_id if isinstance(rule_id, str) else None
        except (KeyError, IndexError, TypeError, AttributeError):
            return None
    return None


def _merge_tools(f: _File, doc: PolicyDocument, tools: dict[str, ToolSpec]) -> None:
    for name, spec in doc.tools.items():
        if not _TOOL_NAME.match(name):
            f.problem(
                ("tools", name),
                f"tool name {name!r} is not a plain ASCII name",
                "use letters, digits, '_', '.' or '-': a look-alike name must never map a tool",
            )
            continue
        tool = ToolSpec(name=name, **spec.model_dump())
        if name in tools and tools[name] != tool:
            f.problem(
                ("tools", name),
                f"tool '{name}' is mapped differently in another file",
                "map each tool in one file only",
            )
        tools[name] = tool


def _merge_providers(f: _File, doc: PolicyDocument, providers: dict[str, Provider]) -> None:
    for name, spec in doc.context.items():
        loc = ("context", name)
        url = None
        if spec.url is not None:
            parsed = parse_template(spec.url)
            if isinstance(parsed, str):
                f.problem((*loc, "url"), parsed, "name a value of the call, e.g. {args.api}")
                continue
            url = parsed
        provider = Provider(
            name, url, spec.method, dict(spec.headers), spec.field, spec.timeout, spec.ttl
        )
        if name in providers and providers[name] != provider:
            f.problem(
                loc,
                f"context '{name}' is defined differently in another file",
                "define each context provider in one file only",
            )
        providers[name] = provider


def _rules(f: _File, vocabulary: set[str]) -> list[Rule]:
    """Check every rule's names, condition and templates, even in a document that failed
    validation elsewhere, so one run reports every problem; compile the rules if all is well."""
    raw_rules = f.data.get("rules") if isinstance(f.data, dict) else None
    if not isinstance(raw_rules, list):
        return []
    checked = []
    for i, raw in enumerate(raw_rules):
        if isinstance(raw, dict):
            checked.append(_check_rule(f, ("rules", i), raw, vocabulary))
    if f.doc is None or f.problems:
        return []
    return [
        _rule(f, ("rules", i), spec, *parts)
        for i, (spec, parts) in enumerate(zip(f.doc.rules, checked, strict=True))
    ]


_Checked = tuple[Condition | None, ReasonTemplate | None, ReasonTemplate | None]


def _check_rule(f: _File, loc: DataPath, raw: dict[str, Any], vocabulary: set[str]) -> _Checked:
    rule_id = raw.get("id") if isinstance(raw.get("id"), str) else None
    intents = raw.get("intent", "*")
    for intent in [intents] if isinstance(intents, str) else intents or []:
        if isinstance(intent, str) and intent != "*" and intent not in vocabulary:
            near = difflib.get_close_matches(intent, sorted(vocabulary), n=1)
            hint = f"did you mean '{near[0]}'? " if near else ""
            f.problem(
                (*loc, "intent"),
                f"unknown intent '{intent}'",
                f"{hint}use an intent a tool maps to, or list it under 'intents:'",
                rule_id,
            )
    condition = None
    when = raw.get("when", "true")
    if isinstance(when, str):
        compiled = compile_condition(when)
        if isinstance(compiled, Condition):
            condition = compiled
        else:
            for p in compiled:
                f.problem((*loc, "when"), p.message, p.fix, rule_id)
    return (
        condition,
        _template(f, (*loc, "reason"), raw.get("reason"), rule_id),
        _template(f, (*loc, "instruction"), raw.get("instruction"), rule_id),
    )


def _rule(
    f: _File,
    loc: DataPath,
    spec: RuleSpec,
    condition: Condition | None,
    reason: ReasonTemplate | None,
    instruction: ReasonTemplate | None,
) -> Rule:
    assert condition is not None  # a rule without a compiled condition is a reported problem
    return Rule(
        id=spec.id,
        effect=Effect(spec.effect),
        condition=condition,
        intents=_selector(spec.intent),
        resources=_selector(spec.resource),
        tools=_selector(spec.tool),
        reason=reason,
        instruction=instruction,
        logging=_logging(spec.logging),
        controls=spec.controls,
        source=f"{f.path}:{f.line(loc)}",
        credential=_grant(spec, f.doc.max_credential_ttl if f.doc else 900),
        context_names=_context_names(spec),
        skip_on_context_error=spec.context_errors == "skip",
    )


_CONTEXT_NAME = re.compile(r"\bcontext\s*\.\s*([A-Za-z_]\w*)")


def _context_names(spec: RuleSpec) -> frozenset[str]:
    """The live facts a rule reads, in its condition or its texts."""
    text = " ".join(t for t in (spec.when, spec.reason, spec.instruction) if t)
    return frozenset(_CONTEXT_NAME.findall(text))


def _grant(spec: RuleSpec, max_ttl: int) -> CredentialGrant | None:
    c = spec.credential
    if c is None:
        return None
    return CredentialGrant(c.audience, min(c.ttl, max_ttl), c.single_use)


def _selector(value: str | tuple[str, ...] | None) -> frozenset[str] | None:
    if value is None:
        return None
    values = frozenset((value,) if isinstance(value, str) else value)
    return None if "*" in values else values


def _template(f: _File, loc: DataPath, text: object, rule_id: str | None) -> ReasonTemplate | None:
    if not isinstance(text, str):
        return None
    parsed = parse_template(text.strip())
    if isinstance(parsed, str):
        f.problem(loc, parsed, "name a value the condition could read, e.g. {args.amount}", rule_id)
        return None
    return parsed


def _logging(spec: LoggingSpec | None) -> LoggingRequirement | None:
    if spec is None:
        return None
    return LoggingRequirement(spec.level, spec.redact, spec.durable)


def _examples(f: _File, doc: PolicyDocument) -> list[Example]:
    out = []
    for i, ex in enumerate(doc.examples):
        loc = ("examples", i)
        try:
            principal = Principal.model_validate(ex.principal) if ex.principal else None
            task = Task.model_validate(ex.task) if ex.task else None
        except ValidationError as err:
            first = err.errors()[0]
            f.problem(
                loc,
                f"example '{ex.name}': {first['msg']} at {'.'.join(map(str, first['loc']))}",
                "correct the example's principal/task",
            )
            continue
        out.append(
            Example(
                ex.name,
                ex.tool,
                ex.args,
                principal,
                task,
                Effect(ex.expect),
                ex.rule,
                f"{f.path}:{f.line(loc)}",
            )
        )
    return out


def _check_unique_ids(files: list[_File], rules: list[Rule]) -> None:
    seen: dict[str, str] = {}
    for rule in rules:
        if rule.id in seen:
            path, _, line = rule.source.rpartition(":")
            owner = next(f for f in files if f.path == path)
            owner.problems.append(
                PolicyProblem(
                    path,
                    int(line) if line.isdigit() else None,
                    f"rule id also used at {seen[rule.id]}",
                    "give every rule a unique id",
                    rule.id,
                )
            )
        seen.setdefault(rule.id, rule.source)


def _assemble(
    files: list[_File],
    rules: list[Rule],
    tools: dict[str, ToolSpec],
    examples: list[Example],
    providers: dict[str, Provider],
) -> OutcomePolicy:
    docs = [f.doc for f in files if f.doc]
    sha = hashlib.sha256()
    for f in files:
        sha.update(Path(f.path).name.encode() + b"\0" + f.text.encode() + b"\0")
    logging = LoggingRequirement()
    for d in docs:
        logging = logging.merge(_logging(d.logging) or LoggingRequirement())
    single = len(docs) == 1
    return OutcomePolicy(
        name=docs[0].metadata.name if single else "+".join(d.metadata.name for d in docs),
        version=str(docs[0].metadata.version)
        if single
        else ",".join(f"{d.metadata.name}@{d.metadata.version}" for d in docs),
        digest="sha256:" + sha.hexdigest(),
        default=Effect.CONFIRM if all(d.default == "confirm" for d in docs) else Effect.DENY,
        rules=tuple(rules),
        tools=tools,
        internal_domains=tuple(sorted({dom.lower() for d in docs for dom in d.internal_domains})),
        logging=logging,
        examples=tuple(examples),
        sources=tuple(f.path for f in files),
        providers=providers,
    )
