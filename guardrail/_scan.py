"""Scanners that find data classes and destinations in argument values.

Secrets by known token formats, then by key names, then by entropy; e-mail addresses; card
numbers that pass the Luhn check; IBANs that pass mod-97; URLs and their hosts.
"""

from __future__ import annotations

import ipaddress
import math
import re
from collections import Counter
from urllib.parse import urlsplit

from guardrail._model import Finding

SECRET, PII, FINANCIAL = "secret", "pii", "financial"

_TOKEN_FORMATS: tuple[tuple[str, str], ...] = (
    ("aws-access-key", r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b"),
    ("github-token", r"\bgh[pousr]_[A-Za-z0-9]{36,}\b"),
    ("github-fine-grained-token", r"\bgithub_pat_[A-Za-z0-9_]{40,}\b"),
    ("slack-token", r"\bxox[abposr]-[A-Za-z0-9-]{10,}"),
    ("stripe-key", r"\b[rs]k_(?:live|test)_[A-Za-z0-9]{16,}\b"),
    ("google-api-key", r"\bAIza[0-9A-Za-z_-]{35}\b"),
    ("openai-key", r"\bsk-(?:proj-)?[A-Za-z0-9_-]{20,}\b"),
    ("jwt", r"\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}"),
    ("private-key", r"-----BEGIN (?:[A-Z]+ )?PRIVATE KEY-----"),
    ("bearer-token", r"(?i:\bbearer\s+[A-Za-z0-9._~+/-]{16,}=*)"),
    ("password-assignment", r"(?i:\b(?:password|passwd|pwd|secret|api_?key)\s*[=:]\s*\S{6,})"),
    ("url-credentials", r"\b[a-z][a-z0-9+.-]*://[^/\s:@]+:[^/\s@]+@"),
)
# one pass over the text for every known format; the group that matched names the format
_TOKENS = re.compile(
    "|".join(f"(?P<{name.replace('-', '_')}>{pattern})" for name, pattern in _TOKEN_FORMATS)
)
_SECRET_KEYS = re.compile(
    r"(?i)(?:^|_|-)(?:password|passwd|secret|token|api_?key|apikey|private_?key|credential"
    r"|client_secret|access_key)s?(?:$|_|-)"
)
# identifiers and references name a secret without being one: secret_id, token_url, key_name
_REFERENCE_KEYS = re.compile(
    r"(?i)(?:_|-)(?:id|ids|name|names|ref|path|arn|url|type|count|"
    r"ttl|length|expiry|expires|minutes|seconds)$"
)
_CANDIDATE = re.compile(r"[A-Za-z0-9_+/=.-]{24,}")
_EMAIL = re.compile(r"\b[A-Za-z0-9._%+-]+@([A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+)\b")
_CARD = re.compile(r"(?<!\d)(?:\d[ -]?){12,18}\d(?!\d)")
_IBAN = re.compile(r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]){11,30}\b")
_URL = re.compile(r"\b[a-zA-Z][a-zA-Z0-9+.-]*://[^\s<>\"'`]+")


def secret_kind(key: str, text: str) -> str | None:
    """Name the kind of secret ``text`` (under argument ``key``) is, or None."""
    match = _TOKENS.search(text)
    if match is not None and match.lastgroup:
        return match.lastgroup.replace("_", "-")
    if text and _SECRET_KEYS.search(key) and not _REFERENCE_KEYS.search(key):
        return "secret-named-argument"
    for token in _CANDIDATE.findall(text):
        if _looks_random(token):
            return "high-entropy-string"
    return None


def _looks_random(token: str) -> bool:
    # mixed case and digits rule out words, paths and lowercase hex digests (commit ids)
    if not (
        any(c.islower() for c in token)
        and any(c.isupper() for c in token)
        and any(c.isdigit() for c in token)
    ):
        return False
    counts = Counter(token)
    entropy = -sum(n / len(token) * math.log2(n / len(token)) for n in counts.values())
    return entropy >= 4.0


def luhn_valid(digits: str) -> bool:
    """The Luhn check card numbers carry."""
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def iban_valid(iban: str) -> bool:
    """The ISO 13616 mod-97 check."""
    text = iban[4:] + iban[:4]
    return int("".join(str(int(c, 36)) for c in text)) % 97 == 1


def scan_text(path: str, key: str, text: str, found: list[Finding]) -> None:
    """Append every data class found in one string argument to ``found``."""
    kind = secret_kind(key, text)
    if kind:
        found.append(Finding(path, SECRET, kind))
    if len(text) < 8:  # too short for a card, an IBAN or an e-mail address
        return
    if "@" in text and _EMAIL.search(text):
        found.append(Finding(path, PII, "email"))
    for match in _CARD.finditer(text):
        digits = re.sub(r"\D", "", match.group())
        if 13 <= len(digits) <= 19 and luhn_valid(digits):
            found.append(Finding(path, FINANCIAL, "card-number"))
            break
    for match in _IBAN.finditer(text):
        if iban_valid(match.group().replace(" ", "")):
            found.append(Finding(path, FINANCIAL, "iban"))
            break


def hosts_in(text: str, hosts: set[str], *, as_destination: bool) -> None:
    """Add the hosts of URLs in ``text`` to ``hosts``; with ``as_destination``, also e-mail
    domains and a bare host name."""
    if "://" in text:
        for match in _URL.finditer(text):
            host = _url_host(match.group())
            if host:
                hosts.add(host)
    if as_destination:
        for match in _EMAIL.finditer(text):
            hosts.add(match.group(1).lower().rstrip("."))
        if " " not in text and "." in text and "/" not in text and "@" not in text:
            hosts.add(text.lower().rstrip("."))


def _url_host(url: str) -> str | None:
    try:
        host = urlsplit(url).hostname
    except ValueError:
        return None
    return host.rstrip(".") if host else None


def is_internal(host: str, internal_domains: tuple[str, ...]) -> bool:
    """Whether ``host`` is inside the policy's internal domains, loopback or a private network."""
    if host == "localhost" or host.endswith(".localhost"):
        return True
    if not (host[:1].isdigit() or ":" in host):  # not an IP literal: a name
        return any(host == d or host.endswith("." + d) for d in internal_domains)
    try:
        address = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return any(host == d or host.endswith("." + d) for d in internal_domains)
    # link-local (cloud metadata endpoints) is not a place data may go unremarked
    return (address.is_private or address.is_loopback) and not address.is_link_local
