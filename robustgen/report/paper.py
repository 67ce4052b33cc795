"""Our main table beside the paper's: each cell with the paper's number and the difference, and per
column the agreement of the two architecture rankings (Spearman ρ, Kendall τ, with p-values).

The paper's numbers ship with the package (robustgen/report/paper/, see PROVENANCE.md there).
Only CIFAR-10 has them; ImageNette runs get no paper column.
"""
from __future__ import annotations

import math
from importlib import resources

import pandas as pd

from robustgen.arch.scale import FULL
from robustgen.report.main_table import flat
from robustgen.report.stats import ordinal, rank_agreement, rank_among

# our column → the paper table's column
PAPER_COLUMNS = {"vanilla_acc": "vanilla_acc", "clean": "at_clean_acc", "pgd_linf": "pgd_linf",
                 "aa_linf": "aa_linf", "pgd_l2": "pgd_l2", "pgd_l1": "pgd_l1", "worst_case": "worst_case"}
MIN_RANKED = 3  # fewer architectures than this: no rank correlation
PAPER_EPOCHS = 100  # the study's training length (PROTOCOL.md): runs trained shorter compare another protocol


def paper_table(name: str = "paper_table_cifar10.csv") -> pd.DataFrame:
    with resources.files("robustgen.report").joinpath("paper", name).open() as f:
        return pd.read_csv(f)


def hybrid_or_patch_row(arch: dict) -> str | None:
    """The hybrid/patch table's row for a run's arch settings: "CoAtNet-CTTT", "ViT p=2", or None."""
    name = (arch or {}).get("name")
    if name == "coatnet" and arch.get("stages"):
        return f"CoAtNet-{arch['stages']}"
    if name in ("vit", "pvtv2") and arch.get("patch_size") is not None:
        return f"{'ViT' if name == 'vit' else 'PVTv2'} p={int(arch['patch_size'])}"
    return None


def hybrid_patch_paper() -> pd.DataFrame:
    """The paper's hybrid and patch-size rows, named as :func:`hybrid_or_patch_row` names them."""
    paper = paper_table("paper_table_hybrids_patch.csv")
    names = [a if e == "hybrid" else f"{a} p={int(float(p))}"
             for e, a, p in zip(paper["experiment"], paper["architecture"], paper["params_m_or_patch"])]
    return paper.assign(architecture=names).drop(columns=["experiment", "params_m_or_patch"])


def hybrids_and_patches(table: pd.DataFrame) -> pd.DataFrame:
    """The rows of the main table that are CoAtNet stage layouts or ViT / PVTv2 patch sizes, in
    the paper's order (the paper's Table of hybrids and patch sizes), named as the paper names them."""
    order = {name: k for k, name in enumerate(hybrid_patch_paper()["architecture"])}
    # the study's default CoAtNet (CCTT) has no row in that table: it stays in the main table only
    rows = table.assign(paper_row=[None if p or (d and hybrid_or_patch_row(a) not in order) else hybrid_or_patch_row(a)
                                   for a, p, d in zip(table["arch_settings"], table["penalised"], table["study_default"])])
    rows = rows.dropna(subset=["paper_row"])
    rows = rows.assign(order=[order.get(name, len(order)) for name in rows["paper_row"]],
                       suffix=[scale_suffix(a) for a in rows["arch_settings"]])  # the study's size first
    rows = rows.sort_values(["order", "suffix", "architecture"], kind="stable")
    repeated = (rows["paper_row"] + rows["suffix"]).duplicated(keep=False)  # e.g. two epoch budgets of one layout
    variants = [(suffix + (f" ({label})" if twice else "")).strip()
                for suffix, label, twice in zip(rows["suffix"], rows["architecture"], repeated)]
    names = [f"{name} {variant}" if variant else name for name, variant in zip(rows["paper_row"], variants)]
    # `architecture` is for reading; `paper_name` (the paper's row) is what claims, figures and the
    # paper comparison match on, `variant` what sets rows of one paper row apart (figure (c)'s lines)
    return (rows.assign(architecture=names, paper_name=rows["paper_row"], variant=variants)
            .drop(columns=["paper_row", "order", "suffix"]).reset_index(drop=True))


def scale_suffix(arch: dict | None) -> str:
    """" (smoke scale)" for a run recorded at a reduced scale (robustgen/arch/scale.py), else ""."""
    name = ((arch or {}).get("scale") or {}).get("name")
    return f" ({name} scale)" if name and name != FULL else ""


def _paper_for(kind: str) -> tuple[pd.DataFrame, dict[str, str]]:
    """The paper's table for a kind of ours ("main", "hybrids", "corruptions"), with its rows under
    `paper_name`, and our column → its column."""
    if kind == "hybrids":
        return hybrid_patch_paper().rename(columns={"architecture": "paper_name"}), PAPER_COLUMNS
    if kind == "corruptions":
        from robustgen.report.corruption_table import PAPER_C_COLUMNS

        return paper_table("paper_table_cifar10c.csv").rename(columns={"architecture": "paper_name"}), PAPER_C_COLUMNS
    return paper_table().rename(columns={"architecture": "paper_name"}), PAPER_COLUMNS


def beside_paper(table: pd.DataFrame, kind: str = "main") -> tuple[pd.DataFrame, pd.DataFrame]:
    """(cells, rankings): cells has ours / paper / difference per column and row; rankings has,
    per column, Spearman ρ and Kendall τ over the architectures both tables have.

    `kind`: "main" (main_table's rows, matched to the paper's Table 1 by architecture when a row is
    the study's default configuration), "hybrids" (hybrids_and_patches' rows, matched by their
    `paper_name`) or "corruptions" (corruption_table's rows, matched as "main")."""
    ours = flat(table)
    paper, columns = _paper_for(kind)
    if kind != "hybrids":  # hybrids_and_patches' rows carry the paper's row name already
        ours["paper_name"] = ours["paper_row"]  # as each run recorded it (robustgen/record/architecture.py)
    joined = ours.merge(paper, on="paper_name", how="left", suffixes=("", "_paper"))
    cells = pd.DataFrame({"architecture": joined["architecture"], "paper_name": joined["paper_name"]})
    rankings = []
    for column in [c for c in columns if c in ours]:
        theirs = joined[columns[column] + ("_paper" if columns[column] in ours else "")]
        cells[f"{column}"] = joined[column]
        cells[f"{column}_paper"] = theirs
        cells[f"{column}_diff"] = joined[column] - theirs
        both = joined[[column]].assign(theirs=theirs).dropna()
        if len(both) >= MIN_RANKED:
            agreement = rank_agreement(both[column].tolist(), both["theirs"].tolist())
            rankings.append({"column": column, "n": agreement.n, "spearman": agreement.spearman,
                             "spearman_p": agreement.spearman_p, "kendall": agreement.kendall,
                             "kendall_p": agreement.kendall_p})
        else:
            rankings.append({"column": column, "n": len(both), "spearman": math.nan, "spearman_p": math.nan,
                             "kendall": math.nan, "kendall_p": math.nan})
    return cells, pd.DataFrame(rankings)


def compact(cells: pd.DataFrame) -> pd.DataFrame:
    """For reading: per column "ours (paper, Δ)" — the CSV keeps the three numbers apart."""
    from robustgen.report.corruption_table import C_TITLES
    from robustgen.report.main_table import TITLES

    out = pd.DataFrame({"architecture": cells["architecture"], "paper row": cells["paper_name"].fillna("—")})
    titles = {**TITLES, **C_TITLES} if "c_acc" in cells else TITLES
    for column in [c[:-len("_paper")] for c in cells.columns if c.endswith("_paper")]:
        out[titles.get(column, column)] = [("—" if pd.isna(o) else f"{o:.1f}")
                       + ("" if pd.isna(t) else f" ({t:.1f})" if pd.isna(o) else f" ({t:.1f}, {o - t:+.1f})")
                       for o, t in zip(cells[column], cells[f"{column}_paper"])]
    return out


def paper_with_families() -> pd.DataFrame:
    """The paper's main table with each architecture's family (cnn, transformer, hybrid, mlp): the
    table ships with a `family` column, so the figures need no registry."""
    return paper_table()


def ranks_among_paper(table: pd.DataFrame) -> pd.DataFrame:
    """For each row of main_table that is an architecture from outside the study (`arch=timm`,
    `arch=custom`: the `external` column), per column its rank among the paper's architectures
    ("3rd of 21") and the 95% bootstrap interval of that rank (stats.rank_among). Empty when no
    row is external."""
    paper = paper_table()
    rows = []
    for _, row in table[table.get("external", pd.Series(False, index=table.index)).astype(bool)].iterrows():
        for column, theirs in PAPER_COLUMNS.items():
            cell = row.get(column)
            if not isinstance(cell, dict) or "acc" not in cell:
                continue
            rank = rank_among(cell["acc"], cell["points"], paper[theirs].dropna().tolist())
            protocol = row.get("protocol") or {}
            rows.append({"architecture": row["architecture"], "family": row.get("family"), "column": column,
                         "eval_set": protocol.get("eval_set"), "epochs": protocol.get("epochs"),
                         "ours": cell["mean"], "rank": rank.rank, "of": rank.of, "rank_low": rank.ci[0],
                         "rank_high": rank.ci[1],
                         "says": f"{ordinal(rank.rank)} of {rank.of} on {column} "
                                 f"[{ordinal(rank.ci[0])}–{ordinal(rank.ci[1])}]"})
    return pd.DataFrame(rows)
