"""Throughput of LogTemplates.learn vs plain drain3 add_log_message on the same lines.

    python bench/templates.py [--loghub DIR] [--nezha FILE] [--repeat N]

Lines: the Content column of every loghub-2k system and the log bodies of the Nezha
TrainTicket OTLP logs (both under ../shared/datasets by default). Each miner starts empty
and sees the lines in the same order; runs of the two alternate (so both see the same
machine load) and the best of ``--repeat`` runs of each is reported (more runs for small
sets, at least 200,000 lines in all).
"""

from __future__ import annotations

import argparse
import gzip
import json
import time
from pathlib import Path

DATASETS = Path(__file__).resolve().parents[2] / "shared" / "datasets"


def load_lines(loghub: Path, nezha: Path) -> dict[str, list[str]]:
    import pandas as pd

    sets: dict[str, list[str]] = {}
    if loghub.is_dir():
        lines: list[str] = []
        for csv in sorted(loghub.glob("*/*_2k.log_structured_corrected.csv")):
            lines += pd.read_csv(csv, dtype=str, keep_default_na=False)["Content"].tolist()
        sets["loghub-2k"] = lines
    if nezha.is_file():
        bodies = []
        with gzip.open(nezha, "rt") as fh:
            for line in fh:
                for rl in json.loads(line)["resourceLogs"]:
                    for sl in rl["scopeLogs"]:
                        bodies += [r.get("body", {}).get("stringValue", "") for r in sl["logRecords"]]
        sets["nezha-logs"] = bodies
    if not sets:
        raise SystemExit(f"no data under {loghub} or {nezha}")
    return sets


def time_drain3(lines: list[str]) -> float:
    from drain3 import TemplateMiner
    from drain3.template_miner_config import TemplateMinerConfig

    miner = TemplateMiner(config=TemplateMinerConfig())
    start = time.perf_counter()
    for line in lines:
        miner.add_log_message(line)
    return time.perf_counter() - start


def time_ours(lines: list[str]) -> float:
    from rca.config import Settings
    from rca.templates.miner import LogTemplates

    miner = LogTemplates(Settings())
    start = time.perf_counter()
    miner.learn(lines)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--loghub", type=Path, default=DATASETS / "loghub-2k")
    parser.add_argument("--nezha", type=Path, default=DATASETS / "nezha-tt-2023-01-29" / "logs.jsonl.gz")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    print(f"{'lines':<12}{'n':>9}{'drain3 lines/s':>16}{'rca lines/s':>14}{'ratio':>8}")
    n_all = base_all = ours_all = 0.0
    for name, lines in load_lines(args.loghub, args.nezha).items():
        n_runs = max(args.repeat, 200_000 // max(len(lines), 1))  # small sets: more runs, steadier best
        runs = [(time_drain3(lines), time_ours(lines)) for _ in range(n_runs)]  # interleaved
        base, ours = min(r[0] for r in runs), min(r[1] for r in runs)
        n_all, base_all, ours_all = n_all + len(lines), base_all + base, ours_all + ours
        print(f"{name:<12}{len(lines):>9}{len(lines) / base:>16,.0f}{len(lines) / ours:>14,.0f}{base / ours:>7.2f}x")
    print(f"{'all':<12}{n_all:>9.0f}{n_all / base_all:>16,.0f}{n_all / ours_all:>14,.0f}{base_all / ours_all:>7.2f}x")


if __name__ == "__main__":
    main()
