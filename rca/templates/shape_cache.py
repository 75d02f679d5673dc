"""Template ids of log lines by digit shape (``masking.digit_shape``): most lines of a new
text share a shape with one seen before and need no masking, nor drain."""

from __future__ import annotations

import re

from rca.templates.masking import Masker, join_spaced, keeps_no_digit, token_shapes

_DIGIT_RUN = re.compile(r"[0-9]+")


class ShapeCache:
    """Values (template ids) of lines by digit shape, exact for every line it answers.

    Lines of one shape mask alike token by token, and whether a token's result
    keeps a digit (``ssh2``, ``node-D0``) depends only on its shape. So a shape records the
    positions of its digit-keeping tokens, and a value is stored under the shape plus the
    text of those tokens: any line that agrees there masks to the very same text."""

    def __init__(self, limit: int = 200_000):
        self.limit = limit
        self._values: dict = {}  # shape -> value; (shape, *kept tokens) -> value
        self._kept: dict[bytes, tuple[int, ...]] = {}  # shape -> positions of its digit-keeping tokens
        # masked tokens (space-joined) -> their join_masked line: lines of a new shape often
        # differ from an earlier one only in values that mask alike. (Texts, not tuples: no
        # work for the garbage collector.)
        self._joined: dict[str, str] = {}
        self._keeping: set[str] = set()  # the joined lines that keep a digit

    def get(self, line: str, shape: bytes):
        """The value stored for ``line`` (whose ``digit_shape`` is ``shape``), or None."""
        value = self._values.get(shape)
        if value is None and (kept := self._kept.get(shape)) is not None:
            tokens = line.split()
            value = self._values.get((shape, *[tokens[i] for i in kept]))
        return value

    def resolve(self, lines: list[str], shapes: list[bytes], masker: Masker, learn) -> list:
        """The value of each line (whose ``digit_shape`` is in ``shapes``), in order: the
        stored one, or else ``learn(masked line)`` (masked by ``masker``), then stored: for the
        whole shape when the masked line keeps no digit, else under the shape and the text of
        its digit-keeping tokens (``get`` reads both)."""
        values, kept_at, limit = self._values, self._kept, self.limit
        joined, keeping = self._joined, self._keeping
        stored, mask_tokens = values.get, masker.mask_tokens
        # most lines: a shape stored before (none in an empty cache); the rest, in order
        out = list(map(stored, shapes)) if values else [None] * len(shapes)
        i = -1
        while True:
            try:
                i = out.index(None, i + 1)
            except ValueError:
                return out
            shape = shapes[i]
            value = stored(shape)  # (stored for an earlier line of this call)
            if value is not None:
                out[i] = value
                continue
            line = lines[i]
            tokens = line.split()
            kept = kept_at.get(shape)
            if kept is not None:
                value = stored((shape, *[tokens[k] for k in kept]))
                if value is not None:
                    out[i] = value
                    continue
            masked_tokens = mask_tokens(tokens, token_shapes(line, shape))
            spaced = " ".join(masked_tokens)
            masked = joined.get(spaced)
            if masked is None:
                masked = join_spaced(spaced)
                if len(joined) >= limit:
                    joined.clear()
                    keeping.clear()
                joined[spaced] = masked
                if not keeps_no_digit(masked):
                    keeping.add(masked)
            keeps_digit = masked in keeping
            out[i] = value = learn(masked)
            if len(values) + len(kept_at) >= limit:
                values.clear()
                kept_at.clear()
                out[i + 1:] = [None] * (len(out) - i - 1)  # (looked up before the cache started over)
                kept = None
            if not keeps_digit:  # the value holds for the whole shape
                if kept is None:  # (else: cannot happen, store no guess)
                    values[shape] = value
                continue
            if kept is None:
                kept = kept_at[shape] = _kept_positions(spaced)
            values[(shape, *[tokens[k] for k in kept])] = value


def _kept_positions(spaced: str) -> tuple[int, ...]:
    """Positions of the tokens that hold a digit, in masked tokens joined by single spaces."""
    kept: list[int] = []
    i = last = 0
    for m in _DIGIT_RUN.finditer(spaced):
        i += spaced.count(" ", last, m.start())
        last = m.start()
        if not kept or kept[-1] != i:
            kept.append(i)
    return tuple(kept)
