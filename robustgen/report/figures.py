"""The report's figures (matplotlib, PNG), from the report's tables — never from runs directly.

(a) robust_generalization.png — PGD-ℓ∞ accuracy against PGD-ℓ2 and PGD-ℓ1 accuracy per
    architecture, coloured by family; the paper's points faint beside ours (the study's picture:
    Transformers and hybrids sit higher for the unseen attacks at a given ℓ∞ accuracy).
(b) worst_case.png — worst-case accuracy per architecture with its 95% interval, the paper's mark.
(c) design_trends.png — worst case and clean accuracy against patch size (ViT, PVTv2) and CoAtNet
    stage layout, ours solid, the paper's dashed.
(d) clean_vs_worst_case.png — clean against worst-case accuracy per architecture.
"""
from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

from robustgen.report.main_table import flat  # noqa: E402

FAMILY_COLOURS = {"cnn": "tab:blue", "transformer": "tab:red", "hybrid": "tab:purple", "mlp": "tab:green",
                  None: "tab:gray"}
FAMILY_NAMES = {"cnn": "CNN", "transformer": "Transformer", "hybrid": "hybrid", "mlp": "MLP", None: "other"}
PAPER_STYLE = {"alpha": 0.3, "marker": "o", "facecolors": "none", "s": 40}


def family_of(value) -> str | None:
    """A table's family cell as a key of FAMILY_COLOURS: None for a run without one (pandas holds
    it as NaN) or with a family the figures do not know."""
    return value if isinstance(value, str) and value in FAMILY_COLOURS else None


def colour(value) -> str:
    return FAMILY_COLOURS[family_of(value)]


def _legend(ax, families) -> None:
    present = {family_of(f) for f in families}
    handles = [plt.Line2D([], [], marker="o", ls="", color=FAMILY_COLOURS[f], label=FAMILY_NAMES[f])
               for f in FAMILY_COLOURS if f in present]
    handles.append(plt.Line2D([], [], marker="o", ls="", mfc="none", color="gray", alpha=0.5, label="paper"))
    handles += [h for h in ax.get_legend_handles_labels()[0] if h.get_label() == "yours"]
    ax.legend(handles=handles, fontsize=7, loc="best")


def yours(table: pd.DataFrame) -> list[bool]:
    """Per row: an architecture from outside the study (arch=timm / arch=custom), highlighted."""
    return [bool(e) for e in table["external"]] if "external" in table else [False] * len(table)


def _mark_yours(ax, table: pd.DataFrame, x: str, y: str) -> None:
    """A star around each of your architectures' points, and "yours" in the legend."""
    mine = table[yours(table)]
    if len(mine):
        ax.scatter(mine[x], mine[y], marker="*", s=220, facecolors="none", edgecolors="black", linewidths=1.2,
                   zorder=4, label="yours")


def _save(fig, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=130)
    plt.close(fig)
    return path


def robust_generalization(table: pd.DataFrame, paper: pd.DataFrame | None, path: Path,
                          eps: dict[str, float] | None = None) -> Path:
    """(a): one panel per unseen attack (ℓ2, ℓ1), x = PGD-ℓ∞ accuracy; `eps`: each attack's ε as
    the runs recorded it (for the axis labels)."""
    ours = flat(table)
    eps = eps or {}
    fig, axes = plt.subplots(1, 2, figsize=(10, 4.2))
    titles = [f"PGD-{n}" + (f" (ε = {eps[c]:g})" if c in eps else "") for c, n in (("pgd_l2", "ℓ2"), ("pgd_l1", "ℓ1"))]
    for ax, column, title in zip(axes, ("pgd_l2", "pgd_l1"), titles):
        if paper is not None:
            ax.scatter(paper["pgd_linf"], paper[column], edgecolors=[colour(f) for f in paper["family"]],
                       **PAPER_STYLE)
        ax.scatter(ours["pgd_linf"], ours[column], c=[colour(f) for f in ours["family"]], s=36, zorder=3)
        _mark_yours(ax, ours, "pgd_linf", column)
        for name, x, y in zip(ours["architecture"], ours["pgd_linf"], ours[column]):
            if pd.notna(x) and pd.notna(y):
                ax.annotate(name, (x, y), fontsize=7, xytext=(3, 3), textcoords="offset points")
        ax.set_xlabel("PGD-ℓ∞ accuracy % (the training attack)")
        ax.set_ylabel(f"{title} accuracy % (unseen)")
        ax.grid(alpha=0.3)
        _legend(ax, list(ours["family"]) + (list(paper["family"]) if paper is not None else []))
    fig.suptitle("Robust generalization to unseen attacks, by architecture family")
    return _save(fig, path)


def worst_case(table: pd.DataFrame, paper: pd.DataFrame | None, path: Path) -> Path:
    """(b): horizontal bars, best at the top, 95% intervals as error bars."""
    rows = table[table["worst_case"].notna().astype(bool)].copy()
    rows["mean"] = [c["mean"] for c in rows["worst_case"]]
    rows = rows.sort_values("mean")
    # clipped at 0: a Wilson bound at 0 or 100% can sit a rounding error beyond the mean
    low = [max(0.0, c["mean"] - c["ci"][0]) for c in rows["worst_case"]]
    high = [max(0.0, c["ci"][1] - c["mean"]) for c in rows["worst_case"]]
    fig, ax = plt.subplots(figsize=(7, 0.35 * len(rows) + 1.4))
    y = range(len(rows))
    mine = yours(rows)
    ax.barh(y, rows["mean"], xerr=[low, high], color=[colour(f) for f in rows["family"]], alpha=0.8,
            capsize=3)
    if paper is not None and "paper_worst_case" in rows:
        ax.scatter(rows["paper_worst_case"], y, marker="D", s=28, facecolors="white", edgecolors="black",
                   label="paper", zorder=4)
        ax.legend(fontsize=7)
    ax.set_yticks(list(y), [f"{a}  ★" if m else a for a, m in zip(rows["architecture"], mine)], fontsize=8)
    for label, m in zip(ax.get_yticklabels(), mine):  # your architectures: bold names with a star
        label.set_fontweight("bold" if m else "normal")
    ax.set_xlabel("worst-case accuracy % (95% interval)")
    ax.grid(axis="x", alpha=0.3)
    ax.set_title("Worst case over the attacks, per architecture")
    return _save(fig, path)


def design_trends(hybrids: pd.DataFrame, paper: pd.DataFrame | None, path: Path) -> Path:
    """(c): patch size (ViT, PVTv2) and CoAtNet layout against worst case and clean accuracy
    (`paper`: the paper's hybrid/patch table, drawn dashed; None for data sets it has no numbers for).
    Rows are placed by the paper's row name (`paper_name`); each variant of them (a scale, a
    training budget: what the row's name adds to the paper's) is a line of its own."""
    theirs = (paper if paper is not None else pd.DataFrame(
        columns=["architecture", "worst_case", "at_clean_acc"])).set_index("architecture")
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    layouts = ["CoAtNet-CCCC", "CoAtNet-CTCC", "CoAtNet-CTTC", "CoAtNet-CTTT"]
    variants = _variants(hybrids)
    for model, colour in (("ViT", "tab:red"), ("PVTv2", "tab:orange")):
        names = sorted({n for n in [*theirs.index, *(n for v in variants.values() for n in v.index)]
                        if n.startswith(f"{model} p=")}, key=lambda n: int(n.split("=")[1]))
        sizes = [int(n.split("=")[1]) for n in names]
        for column, marker in (("worst_case", "o"), ("clean", "s")):
            paper_col = "at_clean_acc" if column == "clean" else column
            if paper is not None:
                axes[0].plot(sizes, [theirs[paper_col].get(n) for n in names], ls="--", marker=marker, color=colour,
                             alpha=0.3, label=f"{model} (paper)" if column == "worst_case" else None)
            for variant, ours in variants.items():
                got = [(s, ours[column].get(n)) for s, n in zip(sizes, names) if n in ours.index]
                if got:
                    axes[0].plot(*zip(*got), ls="-", marker=marker, color=colour,
                                 label=f"{model} {'worst case' if column == 'worst_case' else 'clean'} {variant}".strip())
    for column, marker, colour in (("worst_case", "o", "tab:purple"), ("clean", "s", "tab:gray")):
        paper_col = "at_clean_acc" if column == "clean" else column
        if paper is not None:
            axes[1].plot(range(4), [theirs[paper_col].get(n) for n in layouts], ls="--", marker=marker,
                         color=colour, alpha=0.3)
        for variant, ours in variants.items():
            got = [(k, ours[column].get(n)) for k, n in enumerate(layouts) if n in ours.index]
            if got:
                axes[1].plot(*zip(*got), ls="-" if len(got) == len(layouts) else "none", marker=marker, color=colour,
                             label=f"{'worst case' if column == 'worst_case' else 'clean'} {variant}".strip())
    axes[0].set_xscale("log", base=2)
    axes[0].set_xticks([1, 2, 4, 8], ["1", "2", "4", "8"])
    axes[0].set_xlabel("patch size (px)")
    axes[0].set_ylabel("accuracy %")
    axes[0].set_title("Patch size (dashed: paper)")
    axes[1].set_xticks(range(4), [n.split("-")[1] for n in layouts])
    axes[1].set_xlabel("CoAtNet stages s1–s4 (C: convolution, T: Transformer)")
    axes[1].set_title("Attention stages (dashed: paper)")
    for ax in axes:
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=7)
    return _save(fig, path)


def _variants(hybrids: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """hybrids_and_patches' rows (flat numbers) by variant ("" for the plain rows), each indexed by
    the paper's row name."""
    if not len(hybrids):
        return {}
    return {variant: group.set_index("paper_name") for variant, group in flat(hybrids).groupby("variant", sort=True)}


def clean_vs_worst_case(table: pd.DataFrame, paper: pd.DataFrame | None, path: Path) -> Path:
    """(d): the accuracy–robustness picture per architecture."""
    ours = flat(table)
    fig, ax = plt.subplots(figsize=(6, 4.5))
    if paper is not None:
        ax.scatter(paper["at_clean_acc"], paper["worst_case"], edgecolors=[colour(f) for f in paper["family"]],
                   **PAPER_STYLE)
    ax.scatter(ours["clean"], ours["worst_case"], c=[colour(f) for f in ours["family"]], s=36, zorder=3)
    _mark_yours(ax, ours, "clean", "worst_case")
    for name, x, y in zip(ours["architecture"], ours["clean"], ours["worst_case"]):
        if pd.notna(x) and pd.notna(y):
            ax.annotate(name, (x, y), fontsize=7, xytext=(3, 3), textcoords="offset points")
    ax.set_xlabel("clean accuracy % (after adversarial training)")
    ax.set_ylabel("worst-case accuracy %")
    ax.grid(alpha=0.3)
    _legend(ax, list(ours["family"]) + (list(paper["family"]) if paper is not None else []))
    ax.set_title("Clean vs worst-case accuracy")
    return _save(fig, path)
