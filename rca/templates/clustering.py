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
from functools import lru_cache

from drain3.drain import Drain, LogCluster

from rca.templates.masking import PARAM


_SKELETON = re.compile(r"<\*>|\d+")
_ASCII_DIGIT = re.compile(r"[0-9]")


@lru_cache(maxsize=65536)
def looks_variable(token: str) -> bool:
    """A token that carries a value: a placeholder, or anything with a digit in it."""
    if PARAM in token or _ASCII_DIGIT.search(token):
        return True
    return not token.isascii() and any(c.isdigit() for c in token)


@lru_cache(maxsize=65536)
def skeleton(token: str) -> str:
    """``token`` without its placeholders and digit runs: what two values of one parameter share."""
    return _SKELETON.sub("", token)


def is_wild(token: str) -> bool:
    """A token that is all value: placeholders and digits with punctuation, no letters."""
    return looks_variable(token) and not any(c.isalpha() for c in skeleton(token))


def values_differ_only(a: str, b: str) -> bool:
    """Two differing tokens are two values of one parameter: one is a bare placeholder, or
    both are the same text around their placeholders and digits (``node-<*>``/``node-7``)."""
    if a == PARAM or b == PARAM:
        return True
    return looks_variable(a) and looks_variable(b) and skeleton(a) == skeleton(b)


class WordAwareDrain(Drain):
    """Drain whose similarity refuses a template when a differing token is a plain word."""

    @staticmethod
    def has_numbers(s: str) -> bool:
        """drain3's test (any ``str.isdigit`` character), without a generator for ASCII."""
        if s.isascii():
            return _ASCII_DIGIT.search(s) is not None
        return any(c.isdigit() for c in s)

    def add_log_message(self, content: str):
        """drain3's ``add_log_message`` (same clusters, ids and update types) without its
        profiler hooks and delimiter passes: it runs once for every masked line not seen before."""
        if self.extra_delimiters or self.max_clusters:  # (drain3's LRU of clusters needs its touches)
            return super().add_log_message(content)
        tokens = content.split()
        match = self.tree_search(self.root_node, tokens, self.sim_th, False)
        if match is None:
            self.clusters_counter += 1
            match = LogCluster(tokens, self.clusters_counter)
            self.id_to_cluster[match.cluster_id] = match
            self.add_seq_to_prefix_tree(self.root_node, match)
            return match, "cluster_created"
        old, param = match.log_template_tokens, self.param_str
        match.size += 1
        if old == tuple(tokens):
            return match, "none"
        new = tuple([t if t == s else param for t, s in zip(old, tokens)])
        if new == old:
            return match, "none"
        match.log_template_tokens = new
        return match, "cluster_template_changed"

    def fast_match(self, cluster_ids, tokens, sim_th: float, include_params: bool):
        """drain3's ``fast_match`` (best similarity, then most parameters, first wins) with its
        similarity inlined and word-aware: a template whose differing token is a plain word
        (not ``<*>``, not ``values_differ_only``) is another statement (similarity -1). It runs
        for every candidate of every new line."""
        id_to_cluster, param = self.id_to_cluster, self.param_str
        n = len(tokens)
        max_sim, max_params, max_cluster = -1, -1, None
        for cluster_id in cluster_ids:
            cluster = id_to_cluster.get(cluster_id)
            if cluster is None:
                continue
            equal = params = 0
            for t, s in zip(cluster.log_template_tokens, tokens):
                if t == s:
                    equal += 1
                elif t == param:
                    params += 1
                elif not values_differ_only(t, s):
                    sim = -1.0
                    params = 0
                    break
            else:
                sim = (equal + params if include_params else equal) / n if n else 1.0
            if sim > max_sim or (sim == max_sim and params > max_params):
                max_sim, max_params, max_cluster = sim, params, cluster
        return max_cluster if max_sim >= sim_th else None


class FamilyIndex:
    """Templates of one length keyed by each half of their tokens.

    A template that differs from another in one position at most shares the other's first
    half (``tokens[:n // 2]``) or its second half, so the two halves find every candidate."""

    def __init__(self, min_family: int):
        self.min_family = min_family
        # (*first half, n, 0) / (*second half, n, 1) -> the id of the one template with that half,
        # or the set of ids once more share it (most halves are one template's: no set for them)
        self._halves: dict[tuple, int | set[int]] = {}

    @staticmethod
    def _keys(tokens: tuple[str, ...]) -> tuple[tuple, tuple]:
        # (flat: one tuple a key, not two, for the garbage collector to count)
        n = len(tokens)
        return tokens[:n // 2] + (n, 0), tokens[n // 2:] + (n, 1)

    def _members(self, key: tuple) -> tuple[int] | set[int] | frozenset[int]:
        members = self._halves.get(key, _NONE)
        return (members,) if type(members) is int else members

    def add(self, tid: int, tokens: tuple[str, ...]) -> bool:
        """Index ``tid``; whether another template now shares a half with it (``family_of``
        finds no family for it otherwise)."""
        if len(tokens) < 3:  # too short to hold a family (see family_of)
            return False
        halves, related = self._halves, False
        for key in self._keys(tokens):
            members = halves.get(key)
            if members is None:
                halves[key] = tid
            elif type(members) is int:
                if members != tid:
                    halves[key] = {members, tid}
                    related = True
            else:
                members.add(tid)
                related = related or len(members) > 1
        return related

    def remove(self, tid: int, tokens: tuple[str, ...]) -> None:
        if len(tokens) < 3:
            return
        halves = self._halves
        for key in self._keys(tokens):
            members = halves.get(key)
            if members is None:
                continue
            if type(members) is int:
                if members == tid:
                    del halves[key]
            else:
                members.discard(tid)
                if not members:
                    del halves[key]

    def family_of(self, tid: int, tokens: tuple[str, ...], lookup) -> tuple[int, set[int]] | None:
        """(position, members) of a family ``tid`` should merge with, or None.

        ``lookup(id)`` gives a member's tokens. The members at a position are the templates
        equal to ``tokens`` everywhere else; the first position (in order) whose members
        show a wild value or ``min_family`` different values is the family. At least three
        tokens must be plain words, so that a family is really one statement with one
        varying slot."""
        n = len(tokens)
        if n < 3:
            return None
        first, second = self._keys(tokens)
        by_first, by_second = self._members(first), self._members(second)
        n_others = len(by_first) + len(by_second) - (tid in by_first) - (tid in by_second)
        if not n_others or n - sum(map(looks_variable, tokens)) < 3:
            return None
        half = n // 2
        at: dict[int, set[int]] = {}  # position -> templates differing from tokens there only
        everywhere: set[int] = set()  # templates equal to tokens
        for members, lo, hi in ((by_first, half, n), (by_second, 0, half)):  # the other half may differ
            for m in members:
                if m == tid:
                    continue
                other = lookup(m)
                diff = -1
                for i in range(lo, hi):
                    if other[i] != tokens[i]:
                        if diff >= 0:
                            break
                        diff = i
                else:
                    (everywhere if diff < 0 else at.setdefault(diff, set())).add(m)
        if not at and not everywhere:
            return None
        for p in (range(n) if everywhere else sorted(at)):
            members = at.get(p, set()) | everywhere
            members.add(tid)
            values = {lookup(m)[p] for m in members}
            if any(is_wild(v) for v in values) or len(values) >= self.min_family:
                return p, members
        return None


_NONE: frozenset[int] = frozenset()
