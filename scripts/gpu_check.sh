#!/usr/bin/env bash
# Carry: .whl (hydra-core, omegaconf, antlr4 4.9.3, torchattacks wheels) and .gpudata (the CIFAR-10 pack
# and prepare_cifar10.py from ../shared/data/cifar10): run it as `bash scripts/gpu_check.sh` on the device.
# GPU checks of issue 14 (and 13's costs): one call. Every step time-boxed; logs go to $OUT.
export PYTHONUNBUFFERED=1
T0=$(date +%s)
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
  && export PYTHONPATH=/tmp/site:$PWD || exit 1
{ date -u; nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv;
  python3 -c "import torch, lightning, timm, torchattacks; print('torch', torch.__version__, 'lightning', lightning.__version__, 'timm', timm.__version__, 'torchattacks', torchattacks.__version__)";
  nproc; } > $OUT/env.log 2>&1
timeout 90 python3 .gpudata/prepare_cifar10.py data >> $OUT/env.log 2>&1
echo "data ready after $(( $(date +%s) - T0 )) s" >> $OUT/env.log
B="python3 -m robustgen.bench train --device cuda --data-root data"
# 1. The study's recipe (bf16, batch 128, PGD-ℓ∞ 15 steps): module under Lightning vs plain loop, MFU.
timeout 75 $B --arch resnet --parts overhead --n-batches 20 --warmup 5 --repeats 2 --json $OUT/bench_resnet.json 2>&1 | grep -v Warning | tee -a $OUT/bench.log
timeout 70 $B --arch vit --parts overhead --n-batches 20 --warmup 5 --repeats 2 --json $OUT/bench_vit.json 2>&1 | grep -v Warning | tee -a $OUT/bench.log
# 2. Speed options, each alone (compile included), ResNet-50.
timeout 140 $B --arch resnet --parts options --n-batches 15 --warmup 8 --repeats 1 2>&1 | grep -v Warning | tee -a $OUT/bench.log
# 3. PGD steps × batch size, ResNet-50.
timeout 70 $B --arch resnet --parts scaling --n-batches 8 --warmup 3 --repeats 1 --scaling-batches 128,512 --json $OUT/scaling.json 2>&1 | grep -v Warning | tee -a $OUT/bench.log
echo "benchmarks done after $(( $(date +%s) - T0 )) s" >> $OUT/env.log
# 4. One real epoch of the study's recipe through the CLI (AutoAugment loading, validation, evaluation).
for A in resnet vit; do
  timeout 85 python3 -m robustgen arch=$A trainer=gpu trainer.max_epochs=1 data.num_workers=14 logger=csv \
    progress_bar=false eval=quick eval.n_points=1000 hydra.run.dir=/tmp/run_$A >> $OUT/cli.log 2>&1
  cp /tmp/run_$A/results.json $OUT/results_$A.json 2>/dev/null
  echo "cli $A done after $(( $(date +%s) - T0 )) s" >> $OUT/env.log
done
