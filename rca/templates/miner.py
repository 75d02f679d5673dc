"""Log templates: drain3 over masked bodies, with stable ids and JSON-persisted state.

``learn`` assigns every body a template id (creating or generalising templates);
``match`` only looks ids up and never changes the miner. Ids, once given, keep naming the
same template across calls, persistence and reloads.
"""

from __future__ import annotations

import json
import re
import threading
from collections import Counter
from collections.abc import Iterable

from rca.config import Settings
from rca.errors import InvalidInput, NotFound
from rca.templates.clustering import FamilyIndex, WordAwareDrain
from rca.templates.masking import CODE_LOCATION, PARAM, Masker, digit_shape, digit_shapes, remember
from rca.templates.shape_cache import ShapeCache

STATE_KEY = "templates"
_LOCATION_IN = re.compile(CODE_LOCATION)
STATE_VERSION = 1
_CACHE_LIMIT = 200_000


def build_config(settings: Settings):
    """An explicit drain3 config from Settings (never the implicit drain3.ini)."""
    from drain3.template_miner_config import TemplateMinerConfig

    config = TemplateMinerConfig()
    config.drain_sim_th = settings.drain_sim_th
    config.drain_depth = settings.drain_depth
    config.drain_max_children = settings.drain_max_children
    config.drain_max_clusters = None
    config.masking_instructions = []  # bodies arrive masked by rca.templates.masking
    config.parametrize_numeric_tokens = True
    config.profiling_enabled = False
    return config


class LogTemplates:
    """Mines templates from log bodies; ``learn`` mutates, ``match`` looks up."""

    def __init__(self, settings: Settings | None = None, min_family: int = 4):
        from drain3 import TemplateMiner

        self.settings = settings or Settings()
        self.min_family = min_family
        config = build_config(self.settings)
        self._miner = TemplateMiner(config=config)
        self._miner.drain = WordAwareDrain(
            depth=config.drain_depth, sim_th=config.drain_sim_th, max_children=config.drain_max_children,
            param_str=PARAM, parametrize_numeric_tokens=config.parametrize_numeric_tokens)
        self._lock = threading.RLock()
        self._tokens: dict[int, tuple[str, ...]] = {}  # template id -> template tokens
        self._counts: dict[int, int] = {}
        self._merged: dict[int, int] = {}  # template id merged away -> template id it joined
        self._families = FamilyIndex(min_family)
        self._by_body: dict[str, int] = {}
        self._by_shape = ShapeCache(_CACHE_LIMIT)
        self._by_masked: dict[str, int] = {}
        self._masker = Masker()
        self._dirty = False

    # ------------------------------------------------------------------ learning
    def learn(self, bodies: Iterable[str]) -> list[int]:
        """Template id of each body, learning new templates and generalising old ones.

        Ids are canonical as of the end of the call. Most bodies are found in a cache: the
        exact body, then its digit shape (``masking.digit_shape``), then its masked text;
        drain3 sees only masked texts it has not seen before."""
        with self._lock:
            bodies, distinct = _distinct(bodies)  # each distinct body, in order of first sight
            by_body = tids = self._by_body  # tids: every body's template id
            new = [body for body in distinct if body not in by_body] if by_body else list(distinct)
            if new:
                learned = self._by_shape.resolve(new, digit_shapes(new), self._masker, self._learn_line)
                if len(by_body) + len(new) > _CACHE_LIMIT:  # the cache starts over: keep the ids apart
                    tids = dict(zip(distinct, map(by_body.get, distinct)))
                    tids.update(zip(new, learned))
                    by_body.clear()
                by_body.update(zip(new, learned))
            out = list(map(tids.__getitem__, bodies))
            if self._merged:  # (each id once, then every body's id through that map)
                canon = {tid: self.canonical_id(tid) for tid in set(out)}
                out = list(map(canon.__getitem__, out))
            if out:
                counts = self._counts
                for tid, n in Counter(out).items():
                    counts[tid] = counts.get(tid, 0) + n
                self._dirty = True
        return out

    def _learn_line(self, masked: str) -> int:
        by_masked = self._by_masked
        tid = by_masked.get(masked)
        if tid is None:
            tid = self._learn_masked(masked)
            remember(by_masked, masked, tid, _CACHE_LIMIT)
        return tid

    def _learn_masked(self, masked: str) -> int:
        cluster, change = self._miner.drain.add_log_message(masked)
        cid = cluster.cluster_id
        if change == "cluster_created":  # a template id is the id of the drain cluster it began as
            tid = cid
            related = self._set_tokens(tid, cluster.log_template_tokens)
        else:
            tid = self.canonical_id(cid)
            if change != "cluster_template_changed":
                return tid
            related = self._set_tokens(tid, _generalise(self._tokens[tid], cluster.log_template_tokens))
        return self._merge_family(tid) if related else tid  # (sharing no half, it has no family)

    def _set_tokens(self, tid: int, tokens: tuple[str, ...]) -> bool:
        """Give ``tid`` these tokens; False when no other template shares half of them (so it
        has no family to join), True otherwise or when they are the tokens it had."""
        old = self._tokens.get(tid)
        if old == tokens:
            return True
        if old is not None:
            self._families.remove(tid, old)
        self._tokens[tid] = tokens
        return self._families.add(tid, tokens)

    def _merge_family(self, tid: int) -> int:
        """Merge ``tid`` with the templates that differ from it only in a word slot."""
        while True:
            found = self._families.family_of(tid, self._tokens[tid], self._tokens.__getitem__)
            if found is None:
                return tid
            p, members = found
            keep = min(members)
            merged = list(self._tokens[keep])
            merged[p] = PARAM
            for m in sorted(members):
                if m != keep:
                    self._families.remove(m, self._tokens.pop(m))
                    self._counts[keep] = self._counts.get(keep, 0) + self._counts.pop(m, 0)
                    self._merged[m] = keep
            self._set_tokens(keep, tuple(merged))
            self._retemplate_cluster(keep, tuple(merged))
            tid = keep

    def _retemplate_cluster(self, tid: int, tokens: tuple[str, ...]) -> None:
        """Give drain's cluster ``tid`` the merged template and a place in the tree for it."""
        drain = self._miner.drain
        cluster = drain.id_to_cluster.get(tid)
        if cluster is not None and cluster.log_template_tokens != tokens:
            cluster.log_template_tokens = tokens
            drain.add_seq_to_prefix_tree(drain.root_node, cluster)

    def statements(self, template_ids: Iterable[int]) -> dict[int, int]:
        """Template id -> the id standing for its log statement. Templates that carry the same code location
        (``CODE_LOCATION``) are variants of one statement: drain splits a line whose fixed-looking words vary
        (a listed train type, say), and such variants count together; a template without one stands alone."""
        first: dict[str, int] = {}
        out = {}
        for tid in sorted({int(t) for t in template_ids}):
            m = _LOCATION_IN.search(self.template_text(tid))
            out[tid] = first.setdefault(m.group(0), tid) if m else tid
        return out

    def canonical_id(self, template_id: int) -> int:
        """The id a (possibly merged-away) template id stands for now."""
        tid = int(template_id)
        while tid in self._merged:
            tid = self._merged[tid]
        return tid

    def _known(self, body: str) -> tuple[int | None, str | None]:
        """(template id from the caches or None, masked body or None when not needed)."""
        tid = self._by_body.get(body)
        if tid is None:
            tid = self._by_shape.get(body, digit_shape(body))
        if tid is not None:
            return tid, None
        masked = self._masker.mask(body)
        return self._by_masked.get(masked), masked

    # ------------------------------------------------------------------ lookup
    def match(self, bodies: Iterable[str]) -> list[int | None]:
        """Template id of each body, or None where no template covers it. Never mutates."""
        out: list[int | None] = []
        with self._lock:
            for body in bodies:
                tid, masked = self._known(_as_text(body))
                if tid is None:
                    cluster = self._miner.drain.match(masked, full_search_strategy="fallback")
                    tid = None if cluster is None else cluster.cluster_id
                out.append(None if tid is None else self.canonical_id(tid))
        return out

    def template_text(self, template_id: int) -> str:
        tokens = self._tokens.get(self.canonical_id(template_id))
        if tokens is None:
            raise NotFound(f"unknown template id: {template_id}")
        return " ".join(tokens)

    def text_or_none(self, template_id: int) -> str | None:
        tokens = self._tokens.get(self.canonical_id(template_id))
        return None if tokens is None else " ".join(tokens)

    def templates(self):
        """DataFrame(template_id, template, count), most frequent first."""
        import pandas as pd

        with self._lock:
            rows = [(tid, " ".join(tok), self._counts.get(tid, 0)) for tid, tok in self._tokens.items()]
        frame = pd.DataFrame(rows, columns=["template_id", "template", "count"])
        return frame.sort_values(["count", "template_id"], ascending=[False, True], ignore_index=True)

    def __len__(self) -> int:
        return len(self._tokens)

    # ------------------------------------------------------------------ state
    def to_json(self) -> str:
        """The whole state as plain JSON: drain clusters, templates, merges."""
        with self._lock:
            state = {
                "version": STATE_VERSION,
                "next_id": self._miner.drain.clusters_counter,
                "clusters": [[c.cluster_id, list(c.log_template_tokens), c.size]
                             for c in self._miner.drain.id_to_cluster.values()],
                "templates": [[t, list(tok), self._counts.get(t, 0)] for t, tok in self._tokens.items()],
                "merged": [[a, b] for a, b in self._merged.items()],
            }
        return json.dumps(state, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str, settings: Settings | None = None) -> "LogTemplates":
        """A miner restored from ``to_json`` output (plain data only, nothing executed)."""
        from drain3.drain import LogCluster

        try:
            state = json.loads(text)
            if not isinstance(state, dict) or state.get("version") != STATE_VERSION:
                raise InvalidInput("unsupported template state (expected version "
                                   f"{STATE_VERSION}, got {state.get('version') if isinstance(state, dict) else None!r})")
            self = cls(settings)
            drain = self._miner.drain
            for cid, tokens, size in sorted(state["clusters"], key=lambda c: int(c[0])):
                cluster = LogCluster([str(t) for t in tokens], int(cid))
                cluster.size = int(size)
                drain.id_to_cluster[cluster.cluster_id] = cluster
                drain.add_seq_to_prefix_tree(drain.root_node, cluster)
            drain.clusters_counter = int(state["next_id"])
            for tid, tokens, count in state["templates"]:
                self._set_tokens(int(tid), tuple(str(t) for t in tokens))
                self._counts[int(tid)] = int(count)
            self._merged = {int(a): int(b) for a, b in state["merged"]}
        except (ValueError, KeyError, TypeError) as exc:
            raise InvalidInput(f"corrupt template state: {exc}") from exc
        return self

    @classmethod
    def load(cls, store, settings: Settings | None = None) -> "LogTemplates":
        """The miner persisted in ``store`` (state key ``templates``), or an empty one."""
        text = store.get_state(STATE_KEY)
        return cls(settings) if text is None else cls.from_json(text, settings)

    def persist(self, store) -> bool:
        """Write the state to ``store`` if anything changed since the last write."""
        with self._lock:
            if not self._dirty:
                return False
            store.put_state(STATE_KEY, self.to_json())
            self._dirty = False
        return True


def _generalise(old: tuple[str, ...], new: tuple[str, ...]) -> tuple[str, ...]:
    if len(old) != len(new):
        return new
    return tuple(a if a == b else PARAM for a, b in zip(old, new))


def _distinct(bodies: Iterable) -> tuple[list[str], dict[str, None]]:
    """(the bodies as a list of texts, a dict keyed by the distinct ones in order of first sight)."""
    bodies = bodies if isinstance(bodies, list) else list(bodies)
    try:
        distinct = dict.fromkeys(bodies)
        if set(map(type, distinct)) <= {str}:
            return bodies, distinct
    except TypeError:  # an unhashable body
        pass
    bodies = [_as_text(body) for body in bodies]
    return bodies, dict.fromkeys(bodies)


def _as_text(body) -> str:
    return body if isinstance(body, str) else ("" if body is None else str(body))
