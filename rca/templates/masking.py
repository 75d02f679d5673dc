"""Mask the variable parts of a log line before template mining.

Real logs carry ids, addresses, numbers, times, paths and values inside otherwise fixed
text. ``mask_body`` replaces each with the placeholder ``<*>`` in one regular-expression
pass, so that lines from the same print statement look alike to drain3. The same rules
are exposed as drain3 ``MaskingInstruction``s by ``masking_instructions()`` for anyone
running a plain ``TemplateMiner``.
"""

from __future__ import annotations

import re

PARAM = "<*>"

# (name, pattern) in priority order: earlier rules win where matches overlap.
RULES: list[tuple[str, str]] = [
    ("url", r"\b[a-zA-Z][a-zA-Z0-9+.\-]*://[^\s\"'<>\])]+"),
    ("email", r"\b[\w.+\-]+@[\w\-]+(?:\.[\w\-]+)+\b"),
    ("uuid", r"\b[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\b"),
    ("timestamp", r"\b\d{4}[-/]\d{1,2}[-/]\d{1,2}(?:[T ]\d{1,2}:\d{2}(?::\d{2})?(?:[.,]\d+)?)?"
                  r"(?:Z|[+-]\d{2}:?\d{2})?(?![\w:])"),
    ("clock", r"(?<![\w:.])\d{1,2}:\d{2}:\d{2}(?:[.,]\d+)?(?![\w:])"),
    ("mac", r"(?<![\w:])[0-9a-fA-F]{2}(?::[0-9a-fA-F]{2}){5}(?![\w:])"),
    ("ipv6", r"(?<![\w:])(?:[0-9a-fA-F]{1,4}:){7}[0-9a-fA-F]{1,4}(?![\w:])"),
    ("ipv4", r"(?<![\w.])/?\d{1,3}(?:\.\d{1,3}){3}(?::\d{1,5})?(?![\w.])"),
    ("hostport", r"(?<![\w.\-])[a-zA-Z][\w\-]*(?:\.[\w\-]+)+:\d{2,5}(?!\w)"),
    ("hex", r"\b0[xX][0-9a-fA-F]+\b|(?<![\w\-])(?=[0-9a-fA-F]*\d)(?=[0-9a-fA-F]*[a-fA-F])[0-9a-fA-F]{8,}(?![\w\-])"),
    ("path", r"(?<![\w.:/<>*])(?:/[\w.\-@+~%]+){2,}/?|(?<![\w.:/<>*])/[\w.\-@+~%]*\d[\w.\-@+~%]*"),
    ("quoted", r"\"[^\"\s]*\d[^\"\s]*\"|'[^'\s]*\d[^'\s]*'"),
    ("quantity", r"(?<![\w.])[-+]?\d+(?:\.\d+)?(?:(?:ns|us|µs|ms|s|sec|secs|m|min|mins|h|hrs?|d|"
                 r"b|B|kb|KB|KiB|mb|MB|MiB|gb|GB|GiB|%)|\ (?:ns|us|ms|sec|secs|seconds|"
                 r"B|KB|KiB|MB|MiB|GB|GiB|TB|bytes))(?![\w.])"),
    ("number", r"(?<![A-Za-z0-9])[-+]?\d+(?:[.,]\d+)*"),
]

_MASK = re.compile("|".join(f"(?:{p})" for _, p in RULES))
# well-delimited values that must be masked before the word-level id rules below cut them up
_EARLY = re.compile("|".join(f"(?:{p})" for n, p in RULES if n in {"url", "email", "uuid", "timestamp", "ipv4"}))
# a word holding two or more digit runs (job_1445144423722_0020, broadcast_0_piece0, R02-M1-N0)
# or a name_number id (blk_-1608999687919862906, task_12)
_COMPOUND_ID = re.compile(r"(?<![\w\-])[A-Za-z][A-Za-z0-9]*_-?\d+(?![\w\-])|(?<![\w\-])(?=[\w\-]*[A-Za-z])[\w\-]*?\d+[A-Za-z_\-]+\d[\w\-]*(?![\w\-])")
_KEY_VALUE = re.compile(r"(?<![\w.\-])([A-Za-z_][\w.\-]*)=([^\s,;&)\]}\"']+)")
# dotted names with a digit somewhere: host names, versions (ec2-52-80.compute.internal, 1.2.3-rc1)
_DOTTED = re.compile(r"(?<![\w\-.])(?=[\w\-.]*\d)[\w\-]+(?:\.[\w\-]+){2,}(?![\w\-.])")
_PARAM_RUN = re.compile(r"<\*>(?:(?:[:.,/\-_#]*|,? )<\*>)+")
_MAY_VARY = re.compile(r"[\d/=@]")
_UNITS = frozenset("ns us µs ms sec secs seconds B KB KiB MB MiB GB GiB TB bytes".split())
# a code location (logback's %logger#%line, Class.java:123, app.py:42): it names the log statement, so it stays
_CODE_LOCATION = re.compile(r"\(?[A-Za-z_$][\w$.]*(?:#|\.(?:java|scala|kt|py|go|js|ts|rb|cs|cpp|c|rs):)\d+\)?[,:;\]]?\Z")
_ID_TOKEN = re.compile(r"(?<!\S)(?=\S*\d)(?=[^\s<>]*[A-Za-z])[\w\-]*\d[\w\-]*(?!\S)")


def _is_id(token: str) -> bool:
    """A word mixing letters and several digits (job_1445_0020, R02-M1-N0) is an identifier."""
    digits = sum(c.isdigit() for c in token)
    return digits >= 2 and digits * 3 >= len(token)


def mask_token(token: str) -> str:
    """One whitespace-free token with its variable parts replaced by ``<*>``."""
    if not _MAY_VARY.search(token) or _CODE_LOCATION.match(token):
        return token
    out = _KEY_VALUE.sub(r"\1=<*>", token)
    out = _EARLY.sub(PARAM, out)
    out = _DOTTED.sub(PARAM, out)
    out = _COMPOUND_ID.sub(PARAM, out)
    out = _MASK.sub(PARAM, out)
    return _ID_TOKEN.sub(lambda m: PARAM if _is_id(m.group(0)) else m.group(0), out)


class Masker:
    """``mask`` with a bounded cache of masked tokens: words and constants repeat, so most
    tokens of a line are a dictionary lookup."""

    def __init__(self, cache_size: int = 100_000):
        self.cache_size = cache_size
        self._cache: dict[str, str] = {}

    def mask(self, text: str) -> str:
        """``text`` with each variable part replaced by ``<*>``, runs of placeholders collapsed
        and whitespace normalised to single spaces."""
        cache = self._cache
        out: list[str] = []
        for token in text.split():
            masked = cache.get(token)
            if masked is None:
                masked = mask_token(token)
                if len(cache) >= self.cache_size:
                    cache.clear()
                cache[token] = masked
            if out and out[-1] == PARAM and masked[:1].isalpha():
                core = masked.rstrip(",;:.)]")
                if core in _UNITS:  # '93.0 KB,' -> '<*>,'
                    out[-1] = PARAM + masked[len(core):]
                    continue
            out.append(masked)
        joined = " ".join(out)
        return _PARAM_RUN.sub(PARAM, joined) if PARAM in joined else joined


_DEFAULT = Masker()


def mask_body(text: str) -> str:
    """``text`` with each variable part replaced by ``<*>`` (see ``Masker.mask``)."""
    return _DEFAULT.mask(text)


def masking_instructions() -> list:
    """The same rules as drain3 ``MaskingInstruction``s (mask name = rule name)."""
    from drain3.masking import MaskingInstruction

    return [MaskingInstruction(p, name) for name, p in RULES]
