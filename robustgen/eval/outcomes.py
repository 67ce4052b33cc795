"""Per-example outcomes of an evaluation: the resume state and the input of later analyses.

For every evaluated test point the file records its example id, its label, and `broken_by`:
``"clean"`` (misclassified without attack), the name of the first attack in set order that broke
it, or ``null`` (robust to every attack). ``robust[attack]`` says, per attack, whether the point
survived it (``null`` where the attack did not run on it: points misclassified clean, and in a
cascade the points an earlier attack had already broken). For attacks made of components
(AutoAttack), ``component[attack]`` names the component that broke the point (``null`` where it
held or the attack did not run), and ``seconds_by_component`` / ``points_by_component`` say what
each component cost: the sanity checks and the benchmark read these instead of rerunning anything.

The file is rewritten atomically after every batch and carries a fingerprint of the model's
weights, the attacks' settings, the attack code's version and the evaluated data's content, so
that an interrupted evaluation resumes where it stopped and never mixes in outcomes from another
model, attack set or data set (another split, corruption, severity or transform). It is plain
JSON in columns: ``pandas.DataFrame(json.load(f)["examples"])`` gives one row per point.
"""
from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from robustgen.data.fingerprint import data_fingerprint  # noqa: F401  (part of the fingerprint API)
from robustgen.files import atomic_write_text

FORMAT = "robustgen.eval_outcomes/1"
OUTCOMES_FILE = "eval_outcomes.json"
CLEAN = "clean"  # broken_by of points misclassified without attack

log = logging.getLogger("robustgen")


def weights_fingerprint(model: nn.Module) -> str:
    """sha256 of the model's parameter and buffer names, shapes and values: the same weights give
    the same fingerprint whichever file (best.ckpt, a copy, a re-save) they were loaded from."""
    digest = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        t = tensor.detach().cpu().contiguous()
        digest.update(f"{name}:{tuple(t.shape)}:{t.dtype};".encode())
        digest.update(t.view(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return digest.hexdigest()


def attack_code_version() -> dict:
    """What decides an attack's output besides its settings: our attack and evaluation source
    (hashed, so any edit counts) and the libraries it runs on."""
    import torchattacks

    package = Path(__file__).resolve().parents[1]
    digest = hashlib.sha256()
    for path in sorted([*(package / "attack").glob("*.py"), package / "eval" / "worst_case.py"]):
        digest.update(path.name.encode() + path.read_bytes())
    return {"source": digest.hexdigest()[:16], "torch": torch.__version__, "torchattacks": torchattacks.__version__}


def eval_fingerprint(about: dict) -> str:
    """sha256 of what decides each point's outcome (model, attacks in order, data, schedule)."""
    return hashlib.sha256(json.dumps(about, sort_keys=True, default=str).encode()).hexdigest()


@dataclass
class Outcomes:
    """The columns of the outcomes file, keyed by position; `index` maps example id → position."""

    attacks: list[str]
    fingerprint: str = ""
    about: dict = field(default_factory=dict)
    ids: list[int] = field(default_factory=list)
    labels: list[int] = field(default_factory=list)
    broken_by: list[str | None] = field(default_factory=list)
    robust: dict[str, list[bool | None]] = field(default_factory=dict)
    seconds: float = 0.0  # time spent on the points recorded here, over every (resumed) run
    seconds_by_attack: dict[str, float] = field(default_factory=dict)  # the same, per attack
    component: dict[str, list[str | None]] = field(default_factory=dict)  # attack with components → breaker
    seconds_by_component: dict[str, float] = field(default_factory=dict)  # "attack/component" → seconds
    points_by_component: dict[str, int] = field(default_factory=dict)  # "attack/component" → points attacked

    def __post_init__(self):
        for name in self.attacks:
            self.robust.setdefault(name, [])
        self.index = {i: k for k, i in enumerate(self.ids)}

    def __contains__(self, example_id: int) -> bool:
        return example_id in self.index

    def __len__(self) -> int:
        return len(self.ids)

    def add(self, example_id: int, label: int, broken_by: str | None, robust: dict[str, bool | None],
            component: dict[str, str | None] | None = None) -> None:
        if example_id in self.index:
            raise ValueError(f"example id {example_id} is evaluated twice: ids must be unique in the data set")
        self.index[example_id] = len(self.ids)
        self.ids.append(int(example_id))
        self.labels.append(int(label))
        self.broken_by.append(broken_by)
        for name in self.attacks:
            self.robust[name].append(robust.get(name))
        for name, col in self.component.items():
            col.append((component or {}).get(name))

    def select(self, example_ids: list[int]) -> Outcomes:
        """The outcomes of `example_ids`, in that order (every id must be recorded)."""
        rows = [self.index[i] for i in example_ids]
        return Outcomes(self.attacks, self.fingerprint, self.about, [self.ids[k] for k in rows],
                        [self.labels[k] for k in rows], [self.broken_by[k] for k in rows],
                        {a: [col[k] for k in rows] for a, col in self.robust.items()}, self.seconds,
                        dict(self.seconds_by_attack), {a: [col[k] for k in rows] for a, col in self.component.items()},
                        dict(self.seconds_by_component), dict(self.points_by_component))

    # --- the file --------------------------------------------------------------------------
    def to_json(self) -> dict:
        return {"format": FORMAT, "fingerprint": self.fingerprint, "about": self.about, "attacks": self.attacks,
                "seconds": self.seconds, "seconds_by_attack": self.seconds_by_attack,
                "seconds_by_component": self.seconds_by_component, "points_by_component": self.points_by_component,
                "examples": {"id": self.ids, "label": self.labels, "broken_by": self.broken_by,
                             **{f"robust/{name}": col for name, col in self.robust.items()},
                             **{f"component/{name}": col for name, col in self.component.items()}}}

    def save(self, path: Path) -> None:
        """Write atomically: an interruption leaves the previous complete file, never half of one."""
        atomic_write_text(path, json.dumps(self.to_json()))

    @classmethod
    def from_json(cls, data: dict) -> Outcomes:
        if data.get("format") != FORMAT:
            raise ValueError(f"not a {FORMAT} file (format={data.get('format')!r})")
        ex, attacks = data["examples"], list(data["attacks"])
        components = {k.split("/", 1)[1]: list(col) for k, col in ex.items() if k.startswith("component/")}
        return cls(attacks, data["fingerprint"], data.get("about", {}), list(ex["id"]), list(ex["label"]),
                   list(ex["broken_by"]), {a: list(ex[f"robust/{a}"]) for a in attacks}, float(data["seconds"]),
                   dict(data.get("seconds_by_attack", {})), components, dict(data.get("seconds_by_component", {})),
                   dict(data.get("points_by_component", {})))

    @classmethod
    def resume_or_start(cls, path: Path | None, attacks: list[str], fingerprint: str, about: dict,
                        with_components: list[str] = ()) -> Outcomes:
        """The outcomes saved at `path` if they were made by the same evaluation, else empty ones
        (with a component column for each of `with_components`). A file from another evaluation
        is kept under a new name rather than overwritten."""
        fresh = cls(list(attacks), fingerprint, about, component={name: [] for name in with_components})
        if path is None or not path.is_file():
            return fresh
        try:
            saved = cls.from_json(json.loads(path.read_text()))
        except (OSError, ValueError, KeyError, TypeError) as err:
            log.warning("ignoring unreadable evaluation state %s (%s): starting over", path, err)
            return fresh
        if saved.fingerprint == fingerprint and saved.attacks == list(attacks) \
                and sorted(saved.component) == sorted(with_components):
            if len(saved):
                log.info("resuming the evaluation from %s: %d points already done", path, len(saved))
            return saved
        kept = path.with_name(f"{path.stem}.{saved.fingerprint[:8]}{path.suffix}")
        path.replace(kept)
        log.warning("%s was made by another model, attack set or data set; kept it as %s and started over",
                    path, kept.name)
        return fresh


def load_outcomes(path: str | Path) -> Outcomes:
    """Read an outcomes file (a folder means its eval_outcomes.json) for analysis."""
    path = Path(path)
    if path.is_dir():
        path = path / OUTCOMES_FILE
    return Outcomes.from_json(json.loads(path.read_text()))
