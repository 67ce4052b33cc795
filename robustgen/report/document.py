"""The report folder: every table (CSV + booktabs LaTeX + markdown, printed with rich), the claims,
and the figures, built from the runs' results.json files (config → runs → results.json → report).

Sections, in the paper's order: main table (Table 1) and beside the paper with rank agreement;
hybrids and patch sizes; corruptions (CIFAR-10-C); sparsity vs robustness; the claims; figures (a–d).
A section whose runs are absent says so instead of disappearing.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
from rich.console import Console
from rich.table import Table

from robustgen.errors import RobustgenError
from robustgen.record.sweep_summary import STATUS_FILE
from robustgen.report import figures
from robustgen.report.claims import claims
from robustgen.report.corruption_table import C_TITLES, corruption_table
from robustgen.report.main_table import cell_columns, flat, formatted, main_table
from robustgen.report.paper import (PAPER_EPOCHS, beside_paper, compact, hybrid_or_patch_row, hybrid_patch_paper,
                                    hybrids_and_patches, paper_with_families, ranks_among_paper)
from robustgen.report.runs import Collection, Run, collect
from robustgen.report.sparsity import plot as plot_sparsity
from robustgen.report.sparsity import rank_correlations, run_row



def text(value, column: str) -> str:
    """A cell as text: p-values to 3 significant digits, other numbers to 2 decimals, gaps as —."""
    if isinstance(value, float):
        return "—" if pd.isna(value) else f"{value:.3g}" if column.endswith("_p") else f"{value:.2f}"
    return "—" if value is None else str(value)


def markdown(frame: pd.DataFrame) -> str:
    """A GitHub-style markdown table (no extra dependency for small tables)."""
    head = "| " + " | ".join(map(str, frame.columns)) + " |"
    rule = "|" + "---|" * len(frame.columns)
    body = ["| " + " | ".join(text(v, str(c)) for v, c in zip(row, frame.columns)) + " |"
            for row in frame.itertuples(index=False)]
    return "\n".join([head, rule, *body])


def numbers(table: pd.DataFrame) -> pd.DataFrame:
    """The CSV form: mean, std, seeds and 95% interval bounds as separate columns."""
    columns = cell_columns(table)
    out = flat(table)[[c for c in ("architecture", "family", "params_m", "runs") if c in table] + columns]
    for column in columns:
        cells = table[column]
        out[f"{column}_std"] = [c["std"] if c and c["n"] > 1 else None for c in cells]  # none for one run
        out[f"{column}_n"] = [c["n"] if c else None for c in cells]
        out[f"{column}_ci_low"] = [c["ci"][0] if c else None for c in cells]
        out[f"{column}_ci_high"] = [c["ci"][1] if c else None for c in cells]
    return out


@dataclass
class Document:
    """The report being written: markdown lines, files, and the console the tables go to."""

    out: Path
    console: Console
    lines: list[str] = field(default_factory=list)

    def section(self, title: str, *paragraphs: str) -> None:
        self.lines += ["", f"## {title}", *sum([["", p] for p in paragraphs], [])]

    def frame(self, title: str, frame: pd.DataFrame, name: str | None = None) -> None:
        """Print `frame`, put it in report.md, and (with `name`) write name.csv."""
        table = Table(title=title)
        for column in frame.columns:
            table.add_column(str(column))
        for row in frame.itertuples(index=False):
            table.add_row(*(text(v, str(c)) for v, c in zip(row, frame.columns)))
        self.console.print(table)
        self.lines += ["", markdown(frame)]
        if name:
            frame.to_csv(self.out / f"{name}.csv", index=False)

    def table(self, title: str, table: pd.DataFrame, name: str, titles: dict | None = None) -> None:
        """A table of accuracy cells: name.csv (numbers), name.tex (booktabs) and the printed form."""
        shown = formatted(table, **({"titles": titles} if titles else {}))
        numbers(table).to_csv(self.out / f"{name}.csv", index=False)
        (self.out / f"{name}.tex").write_text(
            shown.style.hide(axis="index").to_latex(hrules=True, column_format="l" + "r" * (len(shown.columns) - 1)))
        self.frame(title, shown)

    def figure(self, path: Path, caption: str) -> None:
        self.lines += ["", f"![{caption}]({path.name})", "", f"*{caption}*"]


def _main_rows(table: pd.DataFrame) -> pd.DataFrame:
    """The main table's rows: everything but ℓ1-penalised runs (sparsity table) and patch / stage
    variants other than the architecture's default (hybrids and patch-size table)."""
    keep = [not p and (d or hybrid_or_patch_row(a) is None)
            for p, d, a in zip(table["penalised"], table["study_default"], table["arch_settings"])]
    return table[keep].reset_index(drop=True)


def _beside(doc: Document, table: pd.DataFrame, kind: str, name: str, compare: bool) -> None:
    if not compare:
        return
    cells, rankings = beside_paper(table, kind)
    cells.to_csv(doc.out / f"{name}_vs_paper.csv", index=False)
    doc.lines += ["", "### Beside the paper", "", "ours (paper, ours − paper), accuracy %."]
    doc.frame(f"{name}: ours (paper, ours − paper)", compact(cells))
    if rankings["n"].max() >= 3:
        doc.lines += ["", "Rank agreement per column (Spearman ρ, Kendall τ-b, SciPy):"]
        doc.frame(f"{name}: architecture rankings, ours vs the paper", rankings, f"{name}_rank_agreement")


def _ranks(doc: Document, main: pd.DataFrame, with_paper: bool) -> None:
    """Where architectures from outside the study (arch=timm, arch=custom) stand among the paper's."""
    ranks = ranks_among_paper(main) if with_paper else pd.DataFrame()
    if not len(ranks):
        return
    doc.lines += ["", "### Your architectures among the paper's", "",
                  "Rank per column among the paper's architectures (1st = most accurate), with the 95% bootstrap "
                  "interval of the rank over seeds and test points (the paper's numbers held fixed)."]
    for line in ranks["architecture"] + ": " + ranks["says"]:
        doc.lines.append(f"- {line}")
        doc.console.print(line, highlight=False)
    apart = ranks[(ranks["eval_set"] != "paper") | (ranks["epochs"] != PAPER_EPOCHS)].drop_duplicates("architecture")
    for _, row in apart.iterrows():  # a rank across protocols says little: say so beside it
        note = (f"{row['architecture']} was evaluated with eval={row['eval_set']} after {row['epochs']} epoch(s); the "
                f"paper's numbers are eval=paper after {PAPER_EPOCHS} epochs, so its ranks compare different protocols")
        doc.lines.append(f"- note: {note}")
        doc.console.print(f"note: {note}", style="yellow", highlight=False)
    ranks.to_csv(doc.out / "ranks_among_paper.csv", index=False)


def sparsity_section(doc: Document, runs: list[Run]) -> None:
    measured = [r for r in runs if r.record.get("sparsity") and not r.vanilla]
    doc.section("Sparsity vs robustness", "Weight sparsity and Theorem 1's norm term beside the robust "
                "generalization gap and the worst case of the adversarially trained runs (PROTOCOL.md claim 2, "
                "the claims' missing number), with Spearman rank correlations.")
    if not measured:
        doc.lines += ["", "(No run measured sparsity: train with the sparsity callback on.)"]
        return
    rows = []
    for run in measured:
        rows.append({**run_row(run.path / "results.json"), "run": run.label, "label": run.label})
    rows.sort(key=lambda r: (str(r["arch"]), r["lambda"], r["run"]))
    shown = pd.DataFrame(rows).drop(columns=["path", "label"]).assign(**{"lambda": [f"{r['lambda']:g}" for r in rows]})
    doc.frame("Sparsity vs robustness", shown, "sparsity_analysis")
    correlations = pd.DataFrame(rank_correlations(rows))
    doc.lines += ["", "Spearman rank correlations:"]
    doc.frame("Spearman rank correlations (sparsity / norm term vs outcome)", correlations, "sparsity_correlations")
    png = plot_sparsity(rows, rank_correlations(rows), doc.out / "sparsity_analysis.png")
    doc.figure(png, "Sparsity and Theorem 1's norm term against the robust gap and the worst case")


def report(paths: list[str], out: Path, data: str, compare: str | None, console: Console,
           found: Collection | None = None) -> Path:
    """Write the report of the runs under `paths` on `data` into `out`; returns report.md's path.

    Raises:
        RobustgenError: no finished run on `data`, a path that matches nothing, or columns that
            would mix different attack or corruption settings (naming the runs).
    """
    found = found or collect(paths)  # the CLI collects once for every data set
    runs = _runs_on(found, data, paths)
    out.mkdir(parents=True, exist_ok=True)
    doc = Document(out, console, [f"# robustgen report ({data})", "",
                                  f"{len(runs)} finished runs under {', '.join(map(str, paths))}."])
    _missing(doc, found.missing, console)
    _scales(doc, runs, console)
    with_paper = compare == "paper" and data == "cifar10"
    note = "" if data == "cifar10" or compare != "paper" else f" The paper has no numbers for {data}."
    everything = main_table(runs, data)
    main = _main_rows(everything) if len(everything) else everything
    hybrid = hybrids_and_patches(everything) if len(everything) else everything
    _main_section(doc, main, data, note, with_paper)
    _hybrid_section(doc, hybrid, with_paper)
    _corruption_section(doc, runs, data, with_paper)
    sparsity_section(doc, runs)
    if with_paper and len(main):
        doc.section("Claims", "PROTOCOL.md's claims on these runs: our difference of mean accuracies (points) "
                    "with its 95% bootstrap interval over architectures, seeds and test points, the paper's "
                    "difference over the same architectures, and whether the sign agrees.")
        doc.frame("Claims", claims(main, hybrid), "claims")
    if len(main):
        _figures(doc, runs, main, hybrid, out, with_paper)
    (out / "report.md").write_text("\n".join(doc.lines) + "\n")
    console.print(f"report: {out / 'report.md'}")
    return out / "report.md"


def _runs_on(found: Collection, data: str, paths: list[str]) -> list[Run]:
    runs = [r for r in found.runs if r.data == data]
    if not runs:
        found_data = sorted({r.data for r in found.runs})
        raise RobustgenError(f"no finished runs on data={data} under {', '.join(map(str, paths))}"
                             + (f"; the runs there are on {', '.join(found_data)}: pass --data "
                                f"{found_data[0]} or leave --data out" if found_data else ""))
    return runs


def _missing(doc: Document, missing: list[Path], console: Console) -> None:
    """Sweep jobs without results.json: those that failed with a recorded error (job_status.json,
    robustgen/record/sweep_summary.py) and those that simply never finished."""
    errors = {job: _recorded_error(job) for job in missing}
    failed = [job for job in missing if errors[job] is not None]
    unfinished = [job for job in missing if errors[job] is None]
    if failed:
        doc.lines += ["", f"**Failed: {len(failed)} sweep job(s)**, with the error each recorded (fix and rerun "
                      "them):", ""] + [f"- {job}: {errors[job]}" for job in failed]
        console.print(f"[yellow]failed: {len(failed)} job(s)[/yellow]: "
                      + "; ".join(f"{job.name}: {errors[job]}" for job in failed), highlight=False)
    if unfinished:
        doc.lines += ["", f"**Missing: {len(unfinished)} sweep job(s) without results.json** (killed, preempted or "
                      "still running; rerun them):", ""] + [f"- {p}" for p in unfinished]
        console.print(f"[yellow]missing: {len(unfinished)} job(s) without results.json[/yellow]: "
                      + ", ".join(map(str, unfinished)))


def _recorded_error(job: Path) -> str | None:
    """The error a failed sweep job recorded in its folder, or None if it recorded none."""
    status = job / STATUS_FILE
    if not status.is_file():
        return None
    try:
        return str(json.loads(status.read_text()).get("error") or "failed (no message recorded)")
    except (OSError, ValueError):
        return "failed (its job_status.json cannot be read)"


def _scales(doc: Document, runs: list[Run], console: Console) -> None:
    """Say which runs are narrower networks than the study's (arch/scale=..., robustgen/arch/scale.py)."""
    sizes: dict[str, dict[str, set[str]]] = {}
    for run in runs:
        scale = run.architecture.get("scale")
        if scale:
            settings = " ".join(f"{k}={v}" for k, v in sorted(scale["settings"].items()))
            sizes.setdefault(scale["name"], {}).setdefault(run.architecture.get("name") or run.arch, set()).add(settings)
    for name, archs in sorted(sizes.items()):
        note = (f"Runs at {name} scale (arch/scale={name}) are narrower networks than the study's, shown in the "
                f"rows of the architectures they stand for: "
                + "; ".join(f"{a} {' / '.join(sorted(s))}" for a, s in sorted(archs.items()))
                + ". Their numbers beside the paper check the pipeline; they do not reproduce the paper.")
        full = sorted({r.architecture.get("name") or r.arch for r in runs if not r.architecture.get("scale")} & set(archs))
        if full:  # rows of one paper row at two sizes: the comparisons below pool them
            note += (f" Runs of {', '.join(full)} at the study's size are here too: the claims and rank agreements "
                     "pool every row that stands for a paper row, whatever its scale.")
        doc.lines += ["", f"**Note:** {note}"]
        console.print(f"note: {note}", style="yellow", highlight=False)


def _main_section(doc: Document, main: pd.DataFrame, data: str, note: str, with_paper: bool) -> None:
    doc.section("Main table", "Accuracy in %, after PGD-ℓ∞ adversarial training (vanilla: trained without "
                "attack). One run: mean [95% Wilson interval over test points]; several seeds: mean ± std (n), "
                "their 95% bootstrap interval over seeds and test points in main_table.csv." + note)
    if len(main):
        doc.table(f"Main table ({data})", main, "main_table")
        _beside(doc, main, "main", "main_table", with_paper)
        _ranks(doc, main, with_paper)
    else:
        doc.lines += ["", "(No adversarially trained runs.)"]


def _hybrid_section(doc: Document, hybrid: pd.DataFrame, with_paper: bool) -> None:
    doc.section("Hybrids and patch sizes", "CoAtNet stage layouts (`+sweep=coatnet_stages`) and ViT / PVTv2 "
                "patch sizes (`+sweep=patch_size`), named and ordered as in the paper.")
    if len(hybrid):
        doc.table("Hybrids and patch sizes", hybrid, "hybrids_patches")
        _beside(doc, hybrid, "hybrids", "hybrids_patches", with_paper)
    else:
        doc.lines += ["", "(No CoAtNet layout or patch-size runs.)"]


def _corruption_section(doc: Document, runs: list[Run], data: str, with_paper: bool) -> None:
    corrupted = corruption_table(runs, data)
    c_runs = [r for r in runs if r.record.get("corruptions")]
    cells = sorted({(r.record["corruptions"].get("cells"), r.record["corruptions"].get("n_points")) for r in c_runs},
                   key=str)
    doc.section("Corruptions", "Clean accuracy beside the mean over the CIFAR-10-C (corruption, severity) "
                "cells, vanilla and adversarially trained (runs with `eval/corrupted=all` or `eval=corruptions`)"
                + (f": {cells[0][0]} cells × {cells[0][1]} images." if len(cells) == 1 else ".")
                + " A single run's interval is the Wilson interval over its images, not images × cells (the "
                "cells corrupt the same images), so it is conservative and depends on the mean only through "
                "its count of correct images.")
    if len(corrupted):
        doc.table("Corruptions (CIFAR-10-C mean over cells)", corrupted, "corruptions", C_TITLES)
        _beside(doc, corrupted, "corruptions", "corruptions", with_paper)
    else:
        doc.lines += ["", "(No run evaluated corruptions.)"]


def _figures(doc: Document, runs: list[Run], main: pd.DataFrame, hybrid: pd.DataFrame, out: Path,
             with_paper: bool) -> None:
    paper = paper_with_families() if with_paper else None
    paper_worst = paper.set_index("architecture")["worst_case"] if paper is not None else pd.Series(dtype=float)
    shown = main.assign(paper_worst_case=[paper_worst.get(row) for row in main["paper_row"]])
    how = (lambda drawn: f" ({drawn}: the paper)") if with_paper else (lambda drawn: "")  # noqa: E731
    eps = {name: s["eps"] for r in runs for name, s in r.attack_settings.items() if "eps" in (s or {})}
    doc.section("Figures")
    doc.figure(figures.robust_generalization(main, paper, out / "robust_generalization.png", eps),
               "(a) PGD-ℓ∞ against PGD-ℓ2 and PGD-ℓ1 accuracy, by family" + how("faint"))
    doc.figure(figures.worst_case(shown, paper, out / "worst_case.png"),
               "(b) Worst-case accuracy per architecture with 95% intervals" + how("◇"))
    doc.figure(figures.design_trends(hybrid, hybrid_patch_paper() if with_paper else None,
                                     out / "design_trends.png"),
               "(c) Patch size and CoAtNet stage layout against worst-case and clean accuracy" + how("dashed"))
    doc.figure(figures.clean_vs_worst_case(main, paper, out / "clean_vs_worst_case.png"),
               "(d) Clean against worst-case accuracy" + how("faint"))
