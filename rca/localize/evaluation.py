"""Service-level accuracy of window-level explain on labelled cases (the Nezha cases format).

Ranking uses ONLY each case's window (and the rest of the store as baseline): the
labels (``root_cause``, ``fault_type``, ``inject_time``) are read after ranking, for scoring.
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rca.errors import InvalidInput, NotFound

KS = (1, 2, 3, 4, 5)


@dataclass
class Case:
    case_id: str
    start_ns: int
    end_ns: int
    labels: dict[str, Any]  # everything else in the line; read only after ranking


def read_cases(path: str | Path) -> list[Case]:
    from rca.timeutil import parse_time

    p = Path(path)
    if not p.is_file():
        raise NotFound(f"no cases file at {p}", {"path": str(p)})
    cases = []
    for lineno, line in enumerate(p.read_text().splitlines(), 1):
        if not line.strip():
            continue
        try:
            d = json.loads(line)
            w = d["window"]
            cases.append(Case(str(d["case_id"]), parse_time(w["start"]), parse_time(w["end"]),
                              {k: v for k, v in d.items() if k not in ("case_id", "window")}))
        except (ValueError, KeyError, TypeError, InvalidInput) as exc:
            raise InvalidInput(f"{p}:{lineno}: not a case line ({exc})") from exc
    if not cases:
        raise InvalidInput(f"{p}: no cases")
    return cases


@dataclass
class CaseResult:
    case_id: str
    truth: str
    fault_type: str
    ranking: list[str]
    seconds: float
    explanation: dict = field(default_factory=dict)

    def hit(self, k: int, ranking: list[str] | None = None) -> bool:
        return self.truth in (ranking if ranking is not None else self.ranking)[:k]


def accuracy(results: list[CaseResult], rankings: list[list[str]] | None = None) -> dict[str, float]:
    n = len(results)
    rk = rankings or [r.ranking for r in results]
    out = {f"ac{k}": sum(r.truth in x[:k] for r, x in zip(results, rk)) / n for k in KS}
    out["avg5"] = sum(out[f"ac{k}"] for k in KS) / len(KS)
    return out


def summarize(results: list[CaseResult]) -> dict[str, Any]:
    overall = accuracy(results)
    by_type: dict[str, list[CaseResult]] = defaultdict(list)
    for r in results:
        by_type[r.fault_type].append(r)
    return {
        "n_cases": len(results),
        "ac1": overall["ac1"], "ac3": overall["ac3"], "ac5": overall["ac5"], "avg5": overall["avg5"],
        "seconds_per_case": sum(r.seconds for r in results) / max(len(results), 1),
        "by_fault_type": {t: {"n_cases": len(rs), **{k: v for k, v in accuracy(rs).items()
                                                     if k in ("ac1", "ac3", "ac5", "avg5")}}
                          for t, rs in sorted(by_type.items())},
        "cases": [{"case_id": r.case_id, "truth": r.truth, "fault_type": r.fault_type, "ranking": r.ranking[:10]}
                  for r in results],
    }
