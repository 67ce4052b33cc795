# robustgen — `make help` lists the targets. Variables: PYTHON, VENV, ARGS (extra Hydra overrides).
SHELL := /bin/bash
VENV ?= .venv
PYTHON ?= $(VENV)/bin/python
DATA ?= data
SHARED_CIFAR ?= ../shared/data/cifar10/prepare_cifar10.py
ARGS ?=
RUNS ?= outputs multirun
LAUNCHER ?=
STUDY_LAUNCHER = $(if $(LAUNCHER),--launcher $(LAUNCHER),)
HYDRA_LAUNCHER = $(if $(LAUNCHER),hydra/launcher=$(LAUNCHER),)
CONSTRAINTS ?= constraints.txt
LATEST_VENV ?= .venv-latest
TEST_WORKERS ?= 2

.DEFAULT_GOAL := help
.PHONY: help install lock test-latest data test test-slow fidelity quickstart train train-gpu sweep-patch sweep-zoo report paper paper-smoke test-cluster zoo bench bench-eval bench-train bench-corruptions cifar10c clean

help: ## Show this help
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z0-9_-]+:.*## / {printf "  \033[36m%-18s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

install: ## Create .venv and install robustgen (editable, dev extra) at the versions of constraints.txt
	test -x $(PYTHON) || python3 -m venv $(VENV)
	$(PYTHON) -m pip install -c $(CONSTRAINTS) --upgrade pip
	$(PYTHON) -m pip install -c $(CONSTRAINTS) -e ".[dev]"

test-latest: data ## Early warning: a fresh .venv-latest with the newest releases (no constraints), then the tests
	rm -rf $(LATEST_VENV) && python3 -m venv $(LATEST_VENV)
	$(LATEST_VENV)/bin/python -m pip install --upgrade pip
	$(LATEST_VENV)/bin/python -m pip install -e ".[dev,fidelity]"
	$(LATEST_VENV)/bin/python -m pip freeze --exclude-editable > $(LATEST_VENV)/resolved.txt
	$(LATEST_VENV)/bin/python -m pytest -q -n $(TEST_WORKERS)

lock: test-latest ## Refresh constraints.txt from a green test-latest run (only if its tests passed)
	{ sed -n '1,/^[^#]/{/^#/p}' $(CONSTRAINTS); grep -v '^robustgen' $(LATEST_VENV)/resolved.txt; \
	  echo "pip==$$($(LATEST_VENV)/bin/python -m pip --version | cut -d' ' -f2)"; } > $(CONSTRAINTS).new
	mv $(CONSTRAINTS).new $(CONSTRAINTS)
	@echo "constraints.txt refreshed; review 'git diff constraints.txt' and commit it"

data: ## Write CIFAR-10 to $(DATA)/cifar-10-batches-py from ../shared (or let training download it)
	@if [ -f $(DATA)/cifar-10-batches-py/test_batch ]; then echo "CIFAR-10 already in $(DATA)"; \
	elif [ -f $(SHARED_CIFAR) ]; then $(PYTHON) $(SHARED_CIFAR) $(DATA); \
	else echo "no local pack: training downloads CIFAR-10 into $(DATA) on first use"; fi

test: data ## Run the default test suite (CPU, two pytest-xdist workers, under 8 minutes on 2 cores)
	$(PYTHON) -m pytest -q -n $(TEST_WORKERS)

test-slow: data ## Run only the slow tests (heavy architectures, attack comparisons)
	$(PYTHON) -m pytest -q -m slow

test-cluster: data ## A real one-node SLURM (as root: installs slurm-wlm + munge, starts them), then tests/cluster (sweep, requeue, shards)
	bash tests/cluster/slurm_up.sh up
	$(PYTHON) -m pytest -q -m cluster tests/cluster; status=$$?; bash tests/cluster/slurm_up.sh down; exit $$status

fidelity: data ## eval=paper vs the study's toolkits (foolbox 3, ART 1.17, the authors' AutoAttack) on a small trained CNN (~25 min on 2 cores; installs the fidelity extra)
	$(PYTHON) -m pip install -q -c $(CONSTRAINTS) -e ".[dev,fidelity]"
	$(PYTHON) -m pytest -q -s -m fidelity tests/test_fidelity.py

quickstart: data ## Small real run that learns: ~2 minutes on 2 CPU cores, prints a results table
	$(PYTHON) -m robustgen experiment=quickstart $(ARGS)

train: data ## Full study recipe (100 epochs PGD-AT), e.g. make train ARGS="arch=vit"
	$(PYTHON) -m robustgen $(ARGS)

train-gpu: data ## Full recipe on one GPU (bf16), e.g. make train-gpu ARGS="arch=pvtv2 eval=paper"
	$(PYTHON) -m robustgen trainer=gpu data.num_workers=8 $(ARGS)

sweep-patch: data ## Patch-size sweep of the study, e.g. make sweep-patch ARGS="arch=pvtv2"
	$(PYTHON) -m robustgen -m +sweep=patch_size $(HYDRA_LAUNCHER) $(ARGS)

sweep-zoo: data ## The study's main table: all 20 architectures, e.g. make sweep-zoo LAUNCHER=slurm ARGS="trainer=gpu eval=paper"
	$(PYTHON) -m robustgen -m +sweep=zoo $(HYDRA_LAUNCHER) $(ARGS)

report: ## The study's tables from finished runs beside the paper's, e.g. make report RUNS="multirun/2026-12-01/*"
	$(PYTHON) -m robustgen.report $(RUNS) --compare paper $(ARGS)

paper: data cifar10c ## The whole study (zoo × {PGD-AT, vanilla} + CIFAR-10-C, hybrids, patches, ℓ1) then its report, e.g. make paper LAUNCHER=slurm ARGS="trainer=gpu"
	$(PYTHON) -m robustgen.study $(STUDY_LAUNCHER) $(ARGS)

paper-smoke: data ## The same pipeline, trained as the quickstart, on narrower VGG, ViT and CoAtNet (CPU, ~12 min on 2 cores): every table and figure in multirun/paper_smoke/report
	$(PYTHON) -m robustgen.study --smoke $(STUDY_LAUNCHER) $(ARGS)

zoo: ## Table of every architecture: parameters vs paper, MACs, CPU latency
	$(PYTHON) -m robustgen.zoo

bench: bench-eval bench-train ## Both benchmarks below (docs/benchmarks.md)

bench-eval: data ## Evaluation: cascade vs every attack, sanity checks' cost, our PGD vs torchattacks' (~20 min on CPU)
	$(PYTHON) -m robustgen.bench eval --data-root $(DATA) $(ARGS)

bench-train: data ## Training: PGD-AT images/s, Lightning module vs plain loop, speed options, steps × batch (GPU if any)
	$(PYTHON) -m robustgen.bench train --data-root $(DATA) $(ARGS)

bench-corruptions: cifar10c ## Evaluating all 75 CIFAR-10-C cells (memory-mapped) vs clean evaluation, images/s (~10 min)
	$(PYTHON) -m robustgen.bench corruptions --data-root $(DATA) $(ARGS)

cifar10c: data ## Generate CIFAR-10-C into $(DATA)/CIFAR-10-C (~4 min on 2 cores; resumes), e.g. make cifar10c ARGS="--seed 1"
	$(PYTHON) -m robustgen.corrupt --root $(DATA) $(ARGS)

clean: ## Remove outputs/ and multirun/ runs (keeps data)
	rm -rf outputs lightning_logs
	find multirun -mindepth 1 -maxdepth 1 ! -name README.md -exec rm -rf {} +
