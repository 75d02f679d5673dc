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

# characters every match of a rule needs (one of them); rules without an entry need none
_NEEDS = {"url": ":", "email": "@", "uuid": "-", "timestamp": "-/", "clock": ":", "mac": ":",
          "ipv6": ":", "ipv4": ".", "hostport": ":", "path": "/", "quoted": "\"'"}
_FEATURES = ":@-/.\"'"
_NEEDS_DIGIT = {"timestamp", "clock", "ipv4", "hostport", "hex", "quoted", "quantity", "number"}  # a \d
_DIGIT_BIT = 1 << len(_FEATURES)
_ANY_DIGIT = re.compile(r"\d")
_EARLY_RULES = ("url", "email", "uuid", "timestamp", "ipv4")
_MASK = re.compile("|".join(f"(?:{p})" for _, p in RULES))
# well-delimited values that must be masked before the word-level id rules below cut them up
_EARLY = re.compile("|".join(f"(?:{p})" for n, p in RULES if n in _EARLY_RULES))


def _features(t: str) -> int:
    """Which of ``_FEATURES`` occur in ``t``, as bits, and ``_DIGIT_BIT`` if a digit does."""
    return ((":" in t) | ("@" in t) << 1 | ("-" in t) << 2 | ("/" in t) << 3 | ("." in t) << 4
            | ('"' in t) << 5 | ("'" in t) << 6 | (_ANY_DIGIT.search(t) is not None) << 7)


class _RulesByFeatures(dict):
    """features -> ``_EARLY`` (``early``) or ``_MASK`` without the rules that cannot match a
    text with those features (same order, so the same matches), or None when no rule is left;
    each compiled on first use."""

    def __init__(self, early: bool):
        super().__init__()
        self.early = early

    def __missing__(self, features: int) -> re.Pattern | None:
        present = {c for i, c in enumerate(_FEATURES) if features >> i & 1}
        kept = [p for n, p in RULES if (not self.early or n in _EARLY_RULES)
                and (n not in _NEEDS or present & set(_NEEDS[n]))
                and (n not in _NEEDS_DIGIT or features & _DIGIT_BIT)]
        self[features] = rules = re.compile("|".join(f"(?:{p})" for p in kept)) if kept else None
        return rules


_EARLY_FOR = _RulesByFeatures(early=True)
_LATE_FOR = _RulesByFeatures(early=False)


def _rules_for(early: bool, features: int) -> re.Pattern | None:
    """``_EARLY`` or ``_MASK`` without the rules that cannot match a text with ``features``."""
    return (_EARLY_FOR if early else _LATE_FOR)[features]


# a word holding two or more digit runs (job_1445144423722_0020, broadcast_0_piece0, R02-M1-N0)
# or a name_number id (blk_-1608999687919862906, task_12). A match is a whole run of [\w-] (none
# before, none after), so the digit-runs form is two lookaheads over the run (an ASCII letter;
# a digit, a letter or dash run, a digit) and then the run in one step: no lazy search that
# backtracks over it
_COMPOUND_ID = re.compile(r"(?<![\w\-])(?:[A-Za-z][A-Za-z0-9]*_-?\d+"
                          r"|(?=[\w\-]*[A-Za-z])(?=[\w\-]*?\d[A-Za-z_\-]+\d)[\w\-]+)(?![\w\-])")
# what every _COMPOUND_ID match without an underscore holds: a digit, a letter or dash run, a digit
_TWO_DIGIT_RUNS = re.compile(r"\d[A-Za-z_\-]+\d")
_KEY_VALUE = re.compile(r"(?<![\w.\-])([A-Za-z_][\w.\-]*)=([^\s,;&)\]}\"']+)")
# dotted names with a digit somewhere: host names, versions (ec2-52-80.compute.internal, 1.2.3-rc1)
_DOTTED = re.compile(r"(?<![\w\-.])(?=[\w\-.]*\d)[\w\-]+(?:\.[\w\-]+){2,}(?![\w\-.])")
_PARAM_RUN = re.compile(r"<\*>(?:(?:[:.,/\-_#]*|,? )<\*>)+")
_MAY_VARY = re.compile(r"[\d/=@]")
_UNITS = frozenset("ns us µs ms sec secs seconds B KB KiB MB MiB GB GiB TB bytes".split())
# a code location (logback's %logger#%line, Class.java:123, app.py:42): it names the log statement, so it stays
CODE_LOCATION = r"[A-Za-z_$][\w$.]*(?:#|\.(?:java|scala|kt|py|go|js|ts|rb|cs|cpp|c|rs):)\d+"
_CODE_LOCATION = re.compile(rf"\(?{CODE_LOCATION}\)?[,:;\]]?\Z")
_ID_TOKEN = re.compile(r"(?<!\S)(?=\S*\d)(?=[^\s<>]*[A-Za-z])[\w\-]*\d[\w\-]*(?!\S)")


def _is_id(token: str) -> bool:
    """A word mixing letters and several digits (job_1445_0020, R02-M1-N0) is an identifier."""
    digits = sum(map(str.isdigit, token))
    return digits >= 2 and digits * 3 >= len(token)


def mask_token(token: str) -> str:
    """One whitespace-free token with its variable parts replaced by ``<*>``.

    The passes run in a fixed order; a pass is skipped where the token lacks a character
    every match of it needs (``=`` for key=value, a separator for the early rules, two dots
    for dotted names, ``#`` or ``:`` for a code location, a digit for most), or holds one no
    match of it can (``<`` for a whole-word id), which leaves the result unchanged."""
    return _mask_varying(token) if _MAY_VARY.search(token) else token


def _mask_varying(token: str) -> str:
    """``mask_token`` of a token holding a character ``_MAY_VARY`` looks for."""
    if ("#" in token or ":" in token) and _CODE_LOCATION.match(token):
        return token
    if token.isdecimal() and token.isascii():
        return PARAM
    out = _KEY_VALUE.sub(_value_masked, token) if "=" in token else token
    features = _features(out)
    early = _EARLY_FOR[features]
    if early is not None:
        out, n = early.subn(PARAM, out)
        if out.count(".") >= 2:
            out, n_dotted = _DOTTED.subn(PARAM, out)
            n += n_dotted
        if n:  # (features only change with the text)
            features = _features(out)
    # (the compound id patterns need a digit, and an underscore or two digit runs apart)
    if features & _DIGIT_BIT and ("_" in out or _TWO_DIGIT_RUNS.search(out)):
        out, n = _COMPOUND_ID.subn(PARAM, out)
        if n:
            features = _features(out)
    rules = _LATE_FOR[features]
    if rules is not None:
        out = rules.sub(PARAM, out)
    # _ID_TOKEN matches a whole token of word characters and dashes only, one with a digit:
    # all of ``out`` (which holds no whitespace) or nothing
    if "<" not in out and features & _DIGIT_BIT and _ID_TOKEN.match(out) and _is_id(out):
        return PARAM
    return out


def _value_masked(m: re.Match) -> str:
    return m.group(1) + "=<*>"


# '<*> KB' / '<*> KB,' / '<*> KB KB': a unit word right after a whole-token placeholder joins it
_UNITS_ALT = "|".join(sorted(_UNITS, key=len, reverse=True))
_UNIT_AFTER_PARAM = re.compile(rf"<\*>(?<!\S<\*>)(?: (?:{_UNITS_ALT})(?= ))* (?:{_UNITS_ALT})([,;:.)\]]*)(?!\S)")
# a bare hex id with a digit and a letter: the hex rule masks it whole (it never repeats)
_HEX_ID = re.compile(r"(?=[0-9a-fA-F]*[a-fA-F])(?=[0-9a-fA-F]*[0-9])[0-9a-fA-F]+")
# a 0x literal, maybe listed (0x1f, 0x0b85eee0,): with a digit after the x the compound id rule
# masks it whole, else the hex rule does (no other rule can, it has no separator), and the ','
# stays; its shape keeps its hex letters, so it seldom repeats either
_HEX_LITERAL = re.compile(r"0[xX][0-9a-fA-F]+,?")
_HEX_ZERO = re.compile(rb"0(?=[xX])")
_ONES = bytes.maketrans(b"0123456789", b"1111111111")
_ASCII_DIGIT = re.compile(r"[0-9]")


def digit_shape(text: str) -> bytes:
    """``text`` (UTF-8) with every ASCII digit made ``1``: a key under which texts mask alike.

    No rule tells one digit from another except the hex prefix ``0x``, which the shape keeps
    apart (its zero made a byte UTF-8 never holds). So two texts of one shape mask to the same
    result whenever that result keeps no digit: each digit lay in a part replaced by ``<*>``."""
    raw = text.encode("utf-8", "surrogatepass")
    if b"0x" in raw or b"0X" in raw:
        raw = _HEX_ZERO.sub(b"\xff", raw)
    return raw.translate(_ONES)


def digit_shapes(texts: list[str]) -> list[bytes]:
    """``digit_shape`` of each text, in one pass over all of them where none holds a newline."""
    raw = _HEX_ZERO.sub(b"\xff", "\n".join(texts).encode("utf-8", "surrogatepass"))  # (one pass)
    shapes = raw.translate(_ONES).split(b"\n")
    return shapes if len(shapes) == len(texts) else [digit_shape(text) for text in texts]


def token_shapes(text: str, shape: bytes) -> list[str] | None:
    """The digit shape of each token of ``text`` (as ``text.split()`` cuts it), as latin-1
    text, cut from ``shape`` (the ``digit_shape`` of ``text``); None unless ``text`` is ASCII.

    An ASCII text's shape is ASCII but for the ``0x`` marks, which are no whitespace, so it
    splits where the text does."""
    return shape.decode("latin-1").split() if text.isascii() else None


def keeps_no_digit(masked: str) -> bool:
    """True when no ASCII digit survived masking, so the result holds for the whole shape."""
    return _ASCII_DIGIT.search(masked) is None


class Masker:
    """``mask`` with bounded caches of masked tokens, by text and by digit shape: words and
    constants repeat, and so do values of one form (``blk_<digits>``), so most tokens of a
    line are a dictionary lookup."""

    def __init__(self, cache_size: int = 100_000):
        self.cache_size = cache_size
        self._cache: dict[str, str] = {}
        self._by_shape: dict[str, str] = {}  # digit shape (as latin-1 text) -> masked
        # shapes whose tokens masking leaves as they are (storage142, ssh2): all of one shape
        # meet the same rules at the same places, only the digits differ
        self._unchanged: set[str] = set()

    def _mask_new(self, token: str, shape: str | None = None) -> str:
        """``mask_token(token)``, remembered; ``shape`` (the token's shape), when given, was
        looked up in ``_by_shape`` already."""
        cache, by_shape = self._cache, self._by_shape
        if len(cache) >= self.cache_size:
            cache.clear()
            self._unchanged.clear()  # (it holds fewer entries than the cache)
        if not _MAY_VARY.search(token):  # a plain word: its shape, when given, is itself
            cache[token] = token
            if shape is not None:
                remember(by_shape, shape, token, self.cache_size)
            return token
        if len(token) >= 8 and _HEX_ID.fullmatch(token):
            return PARAM  # a fresh hash or id; not worth a cache entry
        if token[0] == "0" and _HEX_LITERAL.fullmatch(token):
            return PARAM + "," if token[-1] == "," else PARAM  # (no cache entry either)
        masked = None
        if shape is None:
            shape = digit_shape(token).decode("latin-1")
            masked = by_shape.get(shape)
        if masked is None:
            if shape in self._unchanged:
                masked = token
            else:
                masked = _mask_varying(token)
                if keeps_no_digit(masked):
                    remember(by_shape, shape, masked, self.cache_size)
                elif masked == token:
                    self._unchanged.add(shape)
        cache[token] = masked
        return masked

    def mask_tokens(self, tokens: list[str], shapes: list[str] | None = None) -> list[str]:
        """Each whitespace-free token masked (``mask_token``), through the caches; ``shapes``,
        when given, are the tokens' ``token_shapes``."""
        cache = self._cache
        if shapes is None:
            return [cache.get(t) or self._mask_new(t) for t in tokens]
        # a token of a known shape (one an earlier token of the line may have made known) masks
        # as that shape did (plain words and hex ids included: their shape is theirs alone, or
        # one masked alike); the rest, by text or anew. Both caches hold ``mask_token`` results,
        # so which one answers first changes nothing
        by_shape, cached, mask_new = self._by_shape.get, cache.get, self._mask_new
        return [by_shape(s) or cached(t) or mask_new(t, s) for t, s in zip(tokens, shapes)]

    def mask(self, text: str) -> str:
        """``text`` with each variable part replaced by ``<*>``, runs of placeholders collapsed
        and whitespace normalised to single spaces."""
        return join_masked(self.mask_tokens(text.split()))


def join_masked(masked_tokens: list[str]) -> str:
    """Masked tokens as one line: a unit word after a placeholder joins it, runs collapse."""
    return join_spaced(" ".join(masked_tokens))


def join_spaced(out: str) -> str:
    """``join_masked`` of masked tokens already joined by single spaces."""
    first = out.find(PARAM)
    if first < 0:
        return out
    if out.find("<*> ", first) >= 0 and _UNIT_AFTER_PARAM.search(out):  # '93.0 KB,' -> '<*>,'
        out = _UNIT_AFTER_PARAM.sub(r"<*>\1", out)
    # a run is two placeholders or more
    return _PARAM_RUN.sub(PARAM, out) if out.find(PARAM, first + 3) >= 0 and _PARAM_RUN.search(out) else out


def remember(cache: dict, key, value, limit: int) -> None:
    """``cache[key] = value``, the cache starting over once it holds ``limit`` entries."""
    if len(cache) >= limit:
        cache.clear()
    cache[key] = value


_DEFAULT = Masker()


def mask_body(text: str) -> str:
    """``text`` with each variable part replaced by ``<*>`` (see ``Masker.mask``)."""
    return _DEFAULT.mask(text)


def masking_instructions() -> list:
    """The same rules as drain3 ``MaskingInstruction``s (mask name = rule name)."""
    from drain3.masking import MaskingInstruction

    return [MaskingInstruction(p, name) for name, p in RULES]
