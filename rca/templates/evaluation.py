"""Accuracy of template mining on loghub-style benchmark systems.

Each system directory ``<S>`` holds ``<S>_2k.log_structured_corrected.csv`` with the message
(``Content``) and its labelled template (``EventTemplate``). We mine the messages in file order
with ``LogTemplates`` and, on the same lines, with plain drain3 (default ``TemplateMinerConfig``,
no masking), and report per system:

- grouping accuracy ``ga`` (loghub benchmark): a message counts as correct when the set of
  messages in its predicted group equals the set in its labelled group;
- parsing accuracy ``pa``: a message counts as correct when its group's template text equals
  the labelled template, both normalised the same way (whitespace, runs of ``<*>``).
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Hashable, Sequence
from pathlib import Path

from rca.config import Settings
from rca.errors import InvalidInput, NotFound

_RUN = re.compile(r"<\*>(?:[^\w<]*<\*>)+")


def normalise_template(template: str) -> str:
    """Runs of ``<*>`` joined only by punctuation or spaces become one; whitespace collapsed."""
    text = _RUN.sub("<*>", template)
    return " ".join(text.split())


def grouping_accuracy(truth: Sequence[Hashable], predicted: Sequence[Hashable]) -> float:
    """Share of messages whose predicted group is exactly their labelled group."""
    if len(truth) != len(predicted):
        raise InvalidInput("truth and predicted differ in length")
    if not truth:
        return 0.0
    by_pred: dict[Hashable, set[int]] = defaultdict(set)
    by_truth: dict[Hashable, set[int]] = defaultdict(set)
    for i, (t, p) in enumerate(zip(truth, predicted)):
        by_truth[t].add(i)
        by_pred[p].add(i)
    correct = sum(len(members) for members in by_truth.values()
                  if by_pred[predicted[next(iter(members))]] == members)
    return correct / len(truth)


def parsing_accuracy(truth: Sequence[str], predicted: Sequence[str]) -> float:
    """Share of messages whose predicted template text equals the labelled one (normalised)."""
    if not truth:
        return 0.0
    cache: dict[str, str] = {}

    def norm(t: str) -> str:
        if t not in cache:
            cache[t] = normalise_template(t)
        return cache[t]

    return sum(norm(t) == norm(p) for t, p in zip(truth, predicted)) / len(truth)


def mine_ours(lines: list[str], settings: Settings) -> tuple[list[int], list[str]]:
    from rca.templates.miner import LogTemplates

    miner = LogTemplates(settings)
    ids = [miner.canonical_id(i) for i in miner.learn(lines)]
    return ids, [miner.template_text(i) for i in ids]


def mine_drain3_default(lines: list[str]) -> tuple[list[int], list[str]]:
    from drain3 import TemplateMiner
    from drain3.template_miner_config import TemplateMinerConfig

    miner = TemplateMiner(config=TemplateMinerConfig())
    ids = [miner.add_log_message(line)["cluster_id"] for line in lines]
    templates = {c.cluster_id: c.get_template() for c in miner.drain.clusters}
    return ids, [templates[i] for i in ids]


def load_system(directory: Path) -> tuple[list[str], list[str]]:
    import pandas as pd

    name = directory.name
    path = directory / f"{name}_2k.log_structured_corrected.csv"
    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    return frame["Content"].tolist(), frame["EventTemplate"].tolist()


def evaluate_system(directory: Path, settings: Settings) -> dict:
    lines, truth = load_system(directory)
    ids, texts = mine_ours(lines, settings)
    base_ids, base_texts = mine_drain3_default(lines)
    return {
        "ga": round(grouping_accuracy(truth, ids), 4),
        "pa": round(parsing_accuracy(truth, texts), 4),
        "ga_drain3_default": round(grouping_accuracy(truth, base_ids), 4),
        "pa_drain3_default": round(parsing_accuracy(truth, base_texts), 4),
        "n_lines": len(lines),
        "n_templates": len(set(ids)),
        "n_templates_truth": len(set(truth)),
    }


def find_systems(directory: str | Path) -> list[Path]:
    root = Path(directory)
    if not root.is_dir():
        raise NotFound(f"no such directory: {root}")
    systems = sorted(p for p in root.iterdir()
                     if p.is_dir() and (p / f"{p.name}_2k.log_structured_corrected.csv").is_file())
    if not systems:
        raise InvalidInput(f"no loghub systems (<S>/<S>_2k.log_structured_corrected.csv) under {root}")
    return systems


def evaluate_loghub(directory: str | Path, settings: Settings | None = None) -> dict:
    """Per-system GA/PA of ``LogTemplates`` next to plain drain3, and their means."""
    settings = settings or Settings()
    systems = {p.name: evaluate_system(p, settings) for p in find_systems(directory)}
    keys = ("ga", "pa", "ga_drain3_default", "pa_drain3_default")
    mean = {k: round(sum(s[k] for s in systems.values()) / len(systems), 4) for k in keys}
    mean["n_lines"] = sum(s["n_lines"] for s in systems.values())
    return {"systems": systems, "mean": mean}
