"""The `architecture` section of results.json: what the report needs to place a run, recorded when
the run is made so that the report reads result files only (never today's configs or registry).

    {"choice": "vit", "name": "vit", "family": "transformer", "paper_row": "ViT",
     "study_configuration": true, "differs_from_study": {}, "scale": null}

`study_configuration` is true when the run is the study's own configuration of its `arch` choice:
its architecture settings are the ones `arch=<choice>` composes (e.g. ViT with patch 4, CoAtNet
with stages CCTT), it was trained with PGD-AT (or is the vanilla run) and without a weight penalty.
Such a run has a row in the paper's main table (`paper_row`); patch-size and hybrid variants have
rows in its other table (robustgen/report/paper.py); ℓ1-penalised runs go to the sparsity table.
"""
from __future__ import annotations

from robustgen.arch import get_spec, list_archs
from robustgen.arch.external import is_external, source_record
from robustgen.arch.scale import scaled

SECTION = "architecture"


def penalised(regularizer: dict | None) -> bool:
    """Trained with a weight penalty configured (the ℓ1 sweep's jobs, including its λ = 0 baseline,
    which is the sweep's row rather than the main table's). `regularizer`: its describe()."""
    regularizer = regularizer or {}
    return regularizer.get("type", "NoRegularizer") != "NoRegularizer" or float(regularizer.get("weight") or 0) > 0


def architecture_record(choice: str, arch: dict, defaults: dict | None, method: str,
                        regularizer: dict | None) -> dict:
    """The section for a run of `arch=<choice>` with settings `arch` (its resolved config node),
    where `defaults` is what `arch=<choice>` composes (None: unknown here, never the study's
    configuration), `method` the training method's name and `regularizer` its describe().

    A run at a reduced scale (arch/scale=smoke, robustgen/arch/scale.py) is compared with the study's
    configuration at that scale and records the scale: its paper row is the row it stands for, and the
    report says that it is a narrower network."""
    arch, scale = scaled(arch)
    if scale and defaults is not None:
        defaults = {**defaults, **scale["settings"]}
    return {**_section(choice, arch, defaults, method, regularizer), "scale": scale}


def _section(choice: str, arch: dict, defaults: dict | None, method: str, regularizer: dict | None) -> dict:
    known = list_archs()
    if is_external(arch):  # arch=timm / arch=custom: the user's name and family, never a paper row
        return {"choice": choice, "name": arch.get("name") or arch.get("model_name"), "family": arch.get("family"),
                "paper_row": None, "study_configuration": False, "differs_from_study": None,
                "code": source_record(arch)}
    spec = next((get_spec(n) for n in (choice, arch.get("name")) if n in known), None)  # the family
    differs = ({k: arch[k] for k in sorted(defaults) if k in arch and arch[k] != defaults[k]}
               if defaults is not None else None)
    study = defaults is not None and not differs and method == "pgd_at" and not penalised(regularizer)
    # a paper row only for a choice that is one of the study's architectures itself: arch=vgg11
    # (VGG-11, built by the zoo's vgg) is not the paper's VGG
    row = get_spec(choice).paper_name if study and choice in known else None
    return {"choice": choice, "name": arch.get("name", choice), "family": spec.family if spec else None,
            "paper_row": row or None, "study_configuration": study, "differs_from_study": differs}
