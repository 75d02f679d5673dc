"""drain3's Drain with a similarity that tells words from values, plus family merging.

Plain Drain joins a line to a template when enough tokens are equal, whatever differs.
Labelled templates show that two lines which differ in a plain word ("Failed password" /
"Failed none", "stored as bytes" / "stored as values") are usually different statements,
while differing values (numbers, ids, masked parts) are parameters. ``WordAwareDrain``
therefore only joins a line to a template when every differing token looks variable.

A word position *is* a parameter when many different words turn up there with everything
else equal (user names, host names). ``FamilyIndex`` notices that: templates of the same
length that are equal except at one position form a family; once a family has
``min_family`` members (or one of them already holds ``<*>`` there) they are merged into
the oldest one.
"""

from __future__ import annotations

import re
from collections import defaultdict

from drain3.drain import Drain

from rca.templates.masking import PARAM


_SKELETON = re.compile(r"<\*>|\d+")


def looks_variable(token: str) -> bool:
    """A token that carries a value: a placeholder, or anything with a digit in it."""
    return PARAM in token or any(c.isdigit() for c in token)


def is_wild(token: str) -> bool:
    """A token that is all value: placeholders and digits with punctuation, no letters."""
    return looks_variable(token) and not any(c.isalpha() for c in _SKELETON.sub("", token))


def values_differ_only(a: str, b: str) -> bool:
    """Two differing tokens are two values of one parameter: one is a bare placeholder, or
    both are the same text around their placeholders and digits (``node-<*>``/``node-7``)."""
    if a == PARAM or b == PARAM:
        return True
    return looks_variable(a) and looks_variable(b) and _SKELETON.sub("", a) == _SKELETON.sub("", b)


class WordAwareDrain(Drain):
    """Drain whose similarity refuses a template when a differing token is a plain word."""

    def get_seq_distance(self, seq1, seq2, include_params: bool):
        # seq1 is a template, seq2 the line's tokens (same length, checked by the tree)
        n = len(seq1)
        if n == 0:
            return 1.0, 0
        equal = params = 0
        for t, s in zip(seq1, seq2):
            if t == s:
                equal += 1
            elif t == self.param_str:
                params += 1
            elif not values_differ_only(t, s):
                return -1.0, 0  # a word differs: another statement
        if include_params:
            equal += params
        return equal / n, params


class FamilyIndex:
    """Templates of one length keyed by their tokens with one position blanked."""

    def __init__(self, min_family: int):
        self.min_family = min_family
        self._families: dict[tuple, set[int]] = defaultdict(set)

    @staticmethod
    def _keys(tokens: tuple[str, ...]):
        """(position, key) pairs; a key hashes the tokens before and after the position."""
        n = len(tokens)
        prefix = [hash(n)]
        for t in tokens:
            prefix.append(hash((prefix[-1], t)))
        suffix = [0] * (n + 1)
        for i in range(n - 1, -1, -1):
            suffix[i] = hash((suffix[i + 1], tokens[i]))
        for p in range(n):
            yield p, (n, p, prefix[p], suffix[p + 1])

    def add(self, tid: int, tokens: tuple[str, ...]) -> None:
        for _, key in self._keys(tokens):
            self._families[key].add(tid)

    def remove(self, tid: int, tokens: tuple[str, ...]) -> None:
        for _, key in self._keys(tokens):
            members = self._families.get(key)
            if members is not None:
                members.discard(tid)
                if not members:
                    del self._families[key]

    def family_of(self, tid: int, tokens: tuple[str, ...], lookup) -> tuple[int, set[int]] | None:
        """(position, members) of a family ``tid`` should merge with, or None.

        ``lookup(id)`` gives a member's tokens. Only positions where the members hold words
        or placeholders count, and at least two other tokens must be plain equal words,
        so that a family is really one statement with one varying slot."""
        if sum(not looks_variable(t) for t in tokens) < 3:
            return None
        for p, key in self._keys(tokens):
            members = self._families.get(key)
            if not members or members == {tid}:
                continue
            rest = _without(tokens, p)  # guard against hash collisions
            members = {m for m in members if _without(lookup(m), p) == rest} | {tid}
            if len(members) < 2:
                continue
            values = {lookup(m)[p] for m in members}
            if any(is_wild(v) for v in values) or len(values) >= self.min_family:
                return p, members
        return None


def _without(tokens: tuple[str, ...], p: int) -> tuple[str, ...]:
    return tokens[:p] + tokens[p + 1:]
