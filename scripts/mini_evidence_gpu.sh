#!/usr/bin/env bash
# The mini-scale evidence (main tables with seeds, learning-rate sweeps, freeze ablation) on a GPU machine whose
# python3 already holds torch, timm, scipy, matplotlib and safetensors (clean-fid is carried as a wheel in .whl/):
#   bash scripts/mini_evidence_gpu.sh OUT_DIR [MINUTES] [STAGES]
# Trains every run in one pool of 8 processes sharing the GPU (python -m paperlib evidence), starts no new run
# after MINUTES (default 6), then packs what the repository keeps (results/, figures/, each run's log, curve
# samples and result.json, and the digits seed-1 GDD/GDD-I networks the layer study reads) into OUT_DIR. Run it again on
# the same machine to go on: finished runs are reused, unfinished ones resume.
set -uo pipefail
out=${1:?usage: mini_evidence_gpu.sh OUT_DIR [MINUTES] [STAGES]}
minutes=${2:-6}
stages=${3:-main,sweep,ablation}
mkdir -p "$out"
if compgen -G ".whl/*.whl" > /dev/null; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
  export PYTHONPATH=/tmp/site
fi
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1 OMP_NUM_THREADS=2 MPLBACKEND=Agg
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader
started=$SECONDS
timeout $(( ${minutes%.*} * 60 + 200 )) python3 -m paperlib evidence --stages "$stages" --device cuda --workers 8 \
  --minutes "$minutes" 2>&1 | grep --line-buffered -v -e Warning -e "warnings.warn" -e "starting from scratch" \
  | tee -a "$out/evidence.log"
echo "evidence command: $((SECONDS - started)) s" | tee -a "$out/evidence.log"
tar czf "$out/evidence.tgz" results figures $(find runs/mini -name metrics.jsonl -o -name result.json -o \
  -name config.json -o -path "*/progress/*.npz") 2>/dev/null
tar cf "$out/networks.tar" $(ls runs/mini/digits/digits-gdd{,i}/seed1/network.safetensors 2>/dev/null)
ls -la "$out"
