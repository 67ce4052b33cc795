"""What a run shows on W&B beyond its per-epoch curves: the final numbers in the run summary, a
table of per-attack and per-corruption results, and a figure — all read from the run's
results.json record, so a dashboard and the file never disagree.

The config goes to W&B flattened by the logger (`arch.name`, `attack.eps`, ...) with the config
groups' choices under `choice.*` (`choice.arch`, `choice.attack`, `choice.regularizer`, ...), so
runs can be grouped and filtered by option name; the W&B group is the sweep (conf/train.yaml).
"""
from __future__ import annotations

from pathlib import Path

TABLE_COLUMNS = ["kind", "name", "severity", "accuracy"]
FIGURE = "accuracy.png"


def summary_metrics(record: dict) -> dict:
    """Final numbers (accuracies in %, params, MACs per image) for the run summary."""
    out = {"final/acc/clean": record["clean_acc"], "final/acc/worst_case": record["worst_case_acc"],
           "final/n_points": record["n_points"], "params": record.get("params"), "macs": record.get("macs")}
    out.update({f"final/acc/{name}": acc for name, acc in record["attack_acc"].items()})
    corruptions = record.get("corruptions")
    if corruptions:
        out["final/corruption/mean"] = corruptions["mean_acc"]
        out.update({f"final/corruption/{name}": acc for name, acc in corruptions["acc_by_corruption"].items()})
    return {k: v for k, v in out.items() if v is not None}


def result_rows(record: dict) -> list[list]:
    """Rows of TABLE_COLUMNS: clean, each attack, the worst case, each corruption cell."""
    rows = [["clean", "clean", None, record["clean_acc"]]]
    rows += [["attack", name, None, acc] for name, acc in record["attack_acc"].items()]
    rows.append(["worst_case", "worst_case", None, record["worst_case_acc"]])
    corruptions = record.get("corruptions") or {}
    for name, by_severity in (corruptions.get("acc") or {}).items():
        rows += [["corruption", name, int(severity), acc] for severity, acc in by_severity.items()]
    return rows


def accuracy_figure(record: dict, path: Path) -> Path:
    """Bar chart of the run's accuracies (clean, each attack, worst case, corruption mean) with the
    chance level marked; written to `path` (PNG)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = ["clean", *record["attack_acc"], "worst case"]
    values = [record["clean_acc"], *record["attack_acc"].values(), record["worst_case_acc"]]
    if record.get("corruptions"):
        names.append("corruptions (mean)")
        values.append(record["corruptions"]["mean_acc"])
    fig, ax = plt.subplots(figsize=(1.2 + 0.9 * len(names), 3.6))
    bars = ax.bar(names, values, color=["#4c72b0"] + ["#dd8452"] * len(record["attack_acc"]) + ["#c44e52"]
                  + ["#55a868"] * (len(names) - len(record["attack_acc"]) - 2))
    ax.bar_label(bars, fmt="%.1f", fontsize=8)
    chance = record.get("chance_acc")
    if chance:
        ax.axhline(chance, color="grey", linestyle="--", linewidth=1)
        ax.text(-0.45, chance + 1, f"chance {chance:g}%", ha="left", va="bottom", fontsize=7, color="grey",
                bbox={"facecolor": "white", "edgecolor": "none", "pad": 1})
    ax.set_ylim(0, 100)
    ax.set_ylabel("accuracy (%)")
    ax.set_title(f"{record['run_name']} ({record['n_points']} test points)", fontsize=10)
    ax.tick_params(axis="x", labelrotation=20, labelsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def publish(loggers: list, record: dict, output_dir: Path) -> None:
    """Summary, table and figure into every W&B logger of the run (others have their metrics)."""
    from lightning.pytorch.loggers import WandbLogger

    runs = [lg.experiment for lg in loggers if isinstance(lg, WandbLogger)]
    if not runs:
        return
    import wandb

    figure = accuracy_figure(record, Path(output_dir) / FIGURE)
    for run in runs:
        run.summary.update(summary_metrics(record))
        run.log({"final/results": wandb.Table(columns=TABLE_COLUMNS, data=result_rows(record)),
                 "final/accuracy": wandb.Image(str(figure))})


def finish_wandb(loggers: list) -> None:
    """End the W&B run. Lightning's finalize leaves it open, and a later run in the same process
    (the jobs of a multirun, tests) would otherwise log into it instead of its own run."""
    from lightning.pytorch.loggers import WandbLogger

    for lg in loggers:
        if isinstance(lg, WandbLogger) and lg._experiment is not None:
            lg.experiment.finish()
