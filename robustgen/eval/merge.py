"""Join the shards of one evaluation (`eval.shard=i/n` runs of `python -m robustgen.evaluate`) into
one results.json and eval_outcomes.json, as if the points had been evaluated in one run.

    python -m robustgen.evaluate merge SHARD_DIR... [--out DIR]

Refused, naming the shards: shards of different weights (checkpoints), attack sets (settings, code
version) or data (split, corruption, transform) — read off each eval_outcomes.json's fingerprint —,
of different shard counts or point counts, a shard given twice, or a missing shard. Accuracies are
recomputed from the per-example outcomes (report_from_outcomes), never averaged from the shards.

A sweep over the shards (`eval.shard=0/4,1/4,2/4,3/4 -m`) merges itself: the last shard to finish
writes `<sweep dir>/merged/` (:func:`merge_if_complete`).
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from robustgen.errors import RobustgenError
from robustgen.eval.outcomes import OUTCOMES_FILE, Outcomes, load_outcomes
from robustgen.eval.run import parse_shard
from robustgen.eval.worst_case import report_from_outcomes
from robustgen.record.results import RESULTS_FILE, write_results

# parts of the outcomes' `about` that must agree, and what a user calls them
_ABOUT = {"weights": "weights (checkpoint)", "attacks": "attack set", "code": "attack code version",
          "data": "data", "data_content": "data content", "per_attack": "per_attack"}


class MergeError(RobustgenError):
    """Shards that are not parts of one evaluation."""


def _shard(folder: Path) -> tuple[dict, Outcomes]:
    try:
        record = json.loads((folder / RESULTS_FILE).read_text())
        outcomes = load_outcomes(folder / OUTCOMES_FILE)
    except (OSError, ValueError, KeyError) as err:
        raise MergeError(f"{folder}: not a finished evaluation shard (needs {RESULTS_FILE} and {OUTCOMES_FILE}: "
                         f"{err})") from None
    if not (record.get("eval") or {}).get("shard"):
        raise MergeError(f"{folder}: not a shard (its evaluation ran without eval.shard)")
    return record, outcomes


def merge(folders: list[str | Path], out: str | Path) -> Path:
    """Merge the shard folders into `out`; returns the merged results.json's path.

    Raises:
        MergeError: the folders are not all the shards of one evaluation (see the module docstring).
    """
    folders = [Path(f) for f in folders]
    shards = [(f, *_shard(f)) for f in folders]
    first_folder, first, first_outcomes = shards[0]
    for folder, record, outcomes in shards[1:]:
        differs = [label for key, label in _ABOUT.items() if outcomes.about.get(key) != first_outcomes.about.get(key)]
        if differs or outcomes.attacks != first_outcomes.attacks:
            raise MergeError(f"{folder} and {first_folder} are shards of different evaluations "
                             f"(their {', '.join(differs) or 'attack names'} differ); merge only shards of one "
                             "checkpoint, attack set and data")
        if record["eval"].get("total_points") != first["eval"].get("total_points"):
            raise MergeError(f"{folder} splits {record['eval'].get('total_points')} points, {first_folder} "
                             f"{first['eval'].get('total_points')}: give every shard the same eval.n_points")
    parsed = [(f, parse_shard(r["eval"]["shard"])) for f, r, _ in shards]
    counts = {n for _, (_, n) in parsed}
    if len(counts) > 1:
        raise MergeError("shards of different splits: " + ", ".join(f"{f} is {i}/{n}" for f, (i, n) in parsed))
    n_shards = counts.pop()
    seen: dict[int, Path] = {}
    for folder, (i, _) in parsed:
        if i in seen:
            raise MergeError(f"shard {i}/{n_shards} given twice: {seen[i]} and {folder}")
        seen[i] = folder
    missing = sorted(set(range(n_shards)) - set(seen))
    if missing:
        raise MergeError(f"shard(s) {', '.join(f'{i}/{n_shards}' for i in missing)} missing: have "
                         + ", ".join(f"{i}/{n_shards} ({f})" for i, f in sorted(seen.items())))
    ordered = [next(s for s in shards if s[0] == seen[i]) for i in range(n_shards)]
    merged = Outcomes(first_outcomes.attacks, first_outcomes.fingerprint, first_outcomes.about,
                      component={name: [] for name in first_outcomes.component})
    for _, _, outcomes in ordered:
        for k, example_id in enumerate(outcomes.ids):
            merged.add(example_id, outcomes.labels[k], outcomes.broken_by[k],
                       {a: col[k] for a, col in outcomes.robust.items()},
                       {a: col[k] for a, col in outcomes.component.items()})
        merged.seconds += outcomes.seconds
        for table, into in ((outcomes.seconds_by_attack, merged.seconds_by_attack),
                            (outcomes.seconds_by_component, merged.seconds_by_component),
                            (outcomes.points_by_component, merged.points_by_component)):
            for key, value in table.items():
                into[key] = into.get(key, 0) + value
    report = report_from_outcomes(merged, bool(first["eval"].get("per_attack", True)), merged.seconds)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    merged.save(out / OUTCOMES_FILE)
    record = dict(ordered[0][1])  # run settings, checkpoint and sanity flags of shard 0 (where the checks ran)
    record.update(n_points=report.n_points, clean_acc=report.clean_acc, attack_acc=report.attack_acc,
                  worst_case_acc=report.worst_case_acc, metrics=report.metrics())
    record["eval"] = {**record["eval"], "shard": None, "n_points": report.n_points,
                      "outcomes_file": str(out / OUTCOMES_FILE), "merged_from": [str(seen[i]) for i in range(n_shards)],
                      "seconds_all_runs": merged.seconds, "seconds_by_attack": merged.seconds_by_attack}
    return write_results(out, record)


def merge_if_complete(sweep_dir: str | Path, shard_folder: str | Path) -> Path | None:
    """In a sweep over shards, merge into `<sweep_dir>/merged` once every shard of the evaluation
    that `shard_folder` belongs to has finished; None while some are still missing."""
    sweep = Path(sweep_dir)
    own = load_outcomes(Path(shard_folder) / OUTCOMES_FILE).fingerprint
    _, n_shards = parse_shard(json.loads((Path(shard_folder) / RESULTS_FILE).read_text())["eval"]["shard"])
    siblings = []
    for results in sorted(sweep.glob(f"*/{RESULTS_FILE}")):
        try:
            shard = json.loads(results.read_text())["eval"].get("shard")
            if shard and load_outcomes(results.parent / OUTCOMES_FILE).fingerprint == own:
                siblings.append(results.parent)
        except (OSError, ValueError, KeyError):
            continue
    if len(siblings) < n_shards:
        return None
    return merge(siblings, sweep / "merged")


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m robustgen.evaluate merge",
                                     description="Join eval.shard=i/n evaluations into one results.json.")
    parser.add_argument("shards", nargs="+", help="the shards' run folders")
    parser.add_argument("--out", default=None, help="output folder (default: <first shard's parent>/merged)")
    args = parser.parse_args(argv)
    try:
        path = merge(args.shards, args.out or Path(args.shards[0]).resolve().parent / "merged")
    except MergeError as err:
        print(f"robustgen: error: {err}", file=sys.stderr)
        return 2
    record = json.loads(path.read_text())
    print(f"merged {len(args.shards)} shards: {record['n_points']} points, clean {record['clean_acc']:.2f}%, "
          f"worst case {record['worst_case_acc']:.2f}% → {path}")
    return 0
