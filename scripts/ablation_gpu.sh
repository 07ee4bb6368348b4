#!/usr/bin/env bash
# The contrastive ablation (the paper's Table 4: default, baseline without instance maps and
# L_cont, no positional encoding) on the synthetic occlusion benchmark, with seeds, on a GPU:
# renders a larger synthetic corpus, runs `instancehmr ablate` with the paper's ResNet-50 and
# writes the seeded comparison, the training speed and the GPU's use to $OUT.
#
#   OUT=results bash scripts/ablation_gpu.sh             # one GPU, 512 px, about 10 minutes
#   OUT=results SIZE=tiny bash scripts/ablation_gpu.sh   # the same steps on a CPU in minutes
#
# Settings (environment): SIZE=gpu|tiny, SEEDS (3), EPOCHS (gpu: 4), IMAGES (training images,
# gpu: 4000), INPUT (input side, gpu: 512). Run from the repository root after `make install`.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:?set OUT to the folder that receives the results}
SIZE=${SIZE:-gpu}
BIN=${BIN:-.venv/bin}
mkdir -p "$OUT"
WORK=$(mktemp -d)
trap 'kill "${SAMPLER:-0}" 2>/dev/null || true' EXIT

if [ "$SIZE" = tiny ]; then
  SEEDS=${SEEDS:-2} EPOCHS=${EPOCHS:-1} IMAGES=${IMAGES:-32} INPUT=${INPUT:-64}
  MODEL="model.backbone=resnet18 model.head_channels=16 model.embedding_dim=16"
  SCALE="scaling.use_gpu=false scaling.num_workers=2 scaling.cpus_per_worker=0.5 scaling.data_cpus=1 train.batch_size=4 tracking.log_every_steps=2"
else
  SEEDS=${SEEDS:-3} EPOCHS=${EPOCHS:-4} IMAGES=${IMAGES:-4000} INPUT=${INPUT:-512}
  MODEL="model.backbone=resnet50 train.mixed_precision=true"
  SCALE="scaling.use_gpu=true scaling.num_workers=1 scaling.cpus_per_worker=8 scaling.data_cpus=6 train.batch_size=32"
fi

# A larger synthetic corpus: IMAGES training images, a tenth for validation, a fifth for the test
# split the benchmark reads, at the input size (no resampling of the renders).
CARD="$WORK/synthetic.yaml"
"$BIN/python" - "$CARD" "$IMAGES" "$INPUT" <<'PY'
import sys, yaml
card, images, size = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
raw = yaml.safe_load(open("datasets/synthetic.yaml"))
raw["options"].update(image_size=size, sizes={"train": images, "val": max(8, images // 10),
                                              "test": max(8, images // 5)})
yaml.safe_dump(raw, open(card, "w"))
PY
start=$(date +%s)
"$BIN/instancehmr" data prepare "$CARD" --out "$WORK/shards" | tee "$OUT/prepare.txt"

if command -v nvidia-smi >/dev/null; then  # GPU use every 2 s while the ablation runs
  nvidia-smi --query-gpu=timestamp,utilization.gpu,memory.used --format=csv -l 2 >"$OUT/gpu_use.csv" &
  SAMPLER=$!
fi
MLFLOW_TRACKING_URI="sqlite:///$WORK/mlflow.db" "$BIN/instancehmr" ablate --experiment quickstart \
  --rows experiments/ablations/baseline.yaml experiments/ablations/no_positional_encoding.yaml \
  --seeds "$SEEDS" --name ablation-gpu \
  "data.mix=[{card: $CARD, weight: 1.0}]" "data.val_card=$CARD" "data.shards_dir=$WORK/shards" \
  "model.input_size=$INPUT" "model.map_size=$((INPUT / 8))" "train.epochs=$EPOCHS" \
  "tracking.storage_path=$WORK/ray_results" $MODEL $SCALE | tee "$OUT/ablation.txt"

# The sweep's tables and every trial's training speed, from its MLflow store.
MLFLOW_TRACKING_URI="sqlite:///$WORK/mlflow.db" "$BIN/python" - "$OUT" <<'PY'
import sys
from pathlib import Path
from mlflow.tracking import MlflowClient
out = Path(sys.argv[1])
client = MlflowClient()
runs = client.search_runs([e.experiment_id for e in client.search_experiments()])
parent = next(r for r in runs if r.data.tags.get("instancehmr.role") == "sweep")
for name in ("ablation.md", "leaderboard.md"):
    client.download_artifacts(parent.info.run_id, name, str(out))
lines = ["| trial | row | images/s (last report) |", "|---|---|---|"]
for run in runs:
    speed = run.data.metrics.get("train/images_per_s")
    if speed is not None:
        lines.append(f"| {run.info.run_name} | {run.data.params.get('ablation', '')} | {speed:.1f} |")
(out / "images_per_s.md").write_text("\n".join(lines) + "\n")
print("\n".join(lines))
PY
echo "total $(( $(date +%s) - start )) s" | tee "$OUT/seconds.txt"
