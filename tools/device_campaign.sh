#!/usr/bin/env bash
# The full-size runs that need a GPU, in one call of the device tool, within a deadline; what the ledger needs
# comes back under $OUT. Jobs run in the order given; each resumes its run folder, so a job cut by the deadline
# goes on from its finished units in the next call (its folder comes back whole when it is small enough).
#
# On this machine, once:   mkdir -p .device-data && cp -r ../shared/data/mnist .device-data/
#                          echo /.device-data/ >> .git/info/exclude
# Device tool command:     bash tools/device_campaign.sh hebb-fig3-deep hebb-table1-transformer
#   (carry: [".device-data"]; timeout_s 600; DEADLINE, seconds for the whole script, default 540)
# Back here, per job:      tar xzf JOB.tar.gz -C runs/ && plasticlab ledger --record runs/JOB --part ... --size ...
# A job cut by the deadline: extract it the same way and name runs/JOB in the next call's carry: it resumes.
# Check the script on a CPU: OUT=/tmp/out DEVICE_CAMPAIGN_QUICK=1 bash tools/device_campaign.sh hebb-fig3-deep
#
# Jobs (MNIST stands in for CIFAR-10 and EMNIST, which are not offline):
#   hebb-fig3-deep           Fig. 3 right: the 6 x 512 tanh MLP, 4 gammas, 10 seeds, 50 epochs
#   hebb-table1-transformer  Table 1's transformer rows: 4 rules x 4 gammas, 10 seeds, until stationary
#   hebb-fig10               Fig. 10 right: the CNN's MLP against the 2 x 128 MLP, 4 gammas, 10 seeds, 50 epochs
#   hebb-sweeps-batch-lr     Figs. 7-8: the batch-size and learning-rate sweeps, 4 gammas, 10 seeds, 50 epochs
#   hebb-sweeps-scale        Fig. 9: the 10M / 50M-parameter MLPs (7 / 9 layers; 1M is recorded), 4 gammas, 10 seeds
#   meta-sanger              S6 / Fig. S5 with the paper's 20 meta-training runs per rule
#   benchmarks               benchmarks/run_all.py's benchmarks on the GPU (no experiments: their plans cost time)
set -uo pipefail
cd "$(dirname "$0")/.."
OUT="${OUT:?set OUT to the folder that comes back}"
DEADLINE="${DEADLINE:-540}"
DATA="${DATA:-.device-data/mnist}"
QUICK=()
[ -n "${DEVICE_CAMPAIGN_QUICK:-}" ] && QUICK=(--quick)
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
PL=(python3 -m plasticlab.cli)
START=$SECONDS
left() { echo $((DEADLINE - (SECONDS - START))); }

job_args() {  # the `plasticlab run` arguments of a job
  case "$1" in
    hebb-fig3-deep) echo "hebb-fig3 --set dataset=mnist --set activations=[] --set max_epochs=50" ;;
    hebb-table1-transformer) echo "hebb-table1 --set models=[transformer]" ;;
    hebb-fig10) echo "hebb-fig10 --set dataset=mnist" ;;
    hebb-sweeps-batch-lr) echo "hebb-sweeps --set dataset=mnist --set max_epochs=50 --set sweeps=[batch,lr]" ;;
    hebb-sweeps-scale) echo "hebb-sweeps --set dataset=mnist --set max_epochs=50 --set sweeps=[scale] --set model_params=[1e7,5e7] --set model_layers=[7,9]" ;;
    meta-sanger) echo "meta-sanger --set dataset=mnist --set split_mode=classes --set seeds=20" ;;
    *) return 1 ;;
  esac
}

pack() {  # $1: job; one file back per job (the device tool brings back 8): its log and its run folder, whole
  # when that is under 15 MiB, else all but its units
  local dir="runs/$1" skip=()
  [ -d "$dir" ] || dir=""
  [ -n "$dir" ] && [ "$(du -sm "$dir" | cut -f1)" -ge 15 ] && skip=(--exclude "$1/units" --exclude "$1/scratch")
  tar czf "$OUT/$1.tar.gz" -C runs "${skip[@]}" "$1.log" ${dir:+"$1"}
}

for job in "$@"; do  # every job name checked before any work
  [ "$job" = benchmarks ] || job_args "$job" > /dev/null || {
    echo "job $job: unknown; allowed: hebb-fig3-deep, hebb-table1-transformer, hebb-fig10, hebb-sweeps-batch-lr, hebb-sweeps-scale, meta-sanger, benchmarks" >&2
    exit 2
  }
done

{
  date -u
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null || echo "no nvidia-smi"
  python3 -c "import jax; print('jax', jax.__version__, jax.devices())"
} | tee "$OUT/device.txt"

for job in "$@"; do
  t=$(($(left) - 20))  # 20 s kept for packing
  if [ "$t" -lt 30 ]; then
    echo "$job: not started, $(left) s left of the deadline" | tee -a "$OUT/summary.txt"
    continue
  fi
  t0=$SECONDS
  mkdir -p runs
  if [ "$job" = benchmarks ]; then
    cmd=(python3 benchmarks/run_all.py --out "runs/$job" --papers '' --data-dir "$DATA" "${QUICK[@]}")
  else
    read -ra args <<< "$(job_args "$job")"
    cmd=("${PL[@]}" run "${args[@]}" --data-dir "$DATA" --no-plots "${QUICK[@]}" --out "runs/$job")
  fi
  timeout -s TERM -k 15 "$t" "${cmd[@]}" > "runs/$job.log" 2>&1
  rc=$?
  pack "$job"
  case $rc in 0) status=finished ;; 124 | 137) status="cut at the deadline" ;; *) status=failed ;; esac
  echo "$job: $status (rc $rc) in $((SECONDS - t0)) s" | tee -a "$OUT/summary.txt"
done
