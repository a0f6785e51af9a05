#!/usr/bin/env bash
# A SLURM job array of safebench workers for one run: each array task gets a GPU node, starts vLLM
# there, and works on the run until nothing is left. Submit after `safebench evaluate --submit`:
#
#   export SAFEBENCH_STORE='postgresql://safebench:PASSWORD@db.example.org:5432/safebench'
#   sbatch --export=ALL,SAFEBENCH_RUN=qwen-vl-2025-06 --array=0-7 examples/deploy/slurm-array.sh
#
# --export=ALL hands the store URL to the job through the environment: never put it in the script or on
# the sbatch command line (job scripts and command lines are readable by other users via scontrol).
# A task that hits the time limit or loses its node loses nothing: its leases expire and another task
# resumes its items from their checkpoints. Resubmit the array to continue a run.
#SBATCH --job-name=safebench-worker
#SBATCH --nodes=1
#SBATCH --ntasks=1
#SBATCH --gpus-per-node=4
#SBATCH --cpus-per-task=16
#SBATCH --mem=64G
#SBATCH --time=08:00:00
#SBATCH --signal=B:TERM@120
#SBATCH --output=logs/safebench-worker-%A_%a.log
set -euo pipefail

: "${SAFEBENCH_STORE:?export SAFEBENCH_STORE (the run store URL) before sbatch --export=ALL}"
: "${SAFEBENCH_RUN:?pass --export=ALL,SAFEBENCH_RUN=NAME}"
MODEL="${SAFEBENCH_MODEL:-Qwen/Qwen2.5-VL-7B-Instruct}"
PORT="${SAFEBENCH_VLLM_PORT:-8000}"          # the target's base_url: http://localhost:8000/v1
CONCURRENCY="${SAFEBENCH_CONCURRENCY:-32}"
TARGETS="${SAFEBENCH_TARGETS:-}"             # e.g. local-vllm,other-label; empty: every target

cd "${SLURM_SUBMIT_DIR:-$PWD}"
. .venv/bin/activate

# One vLLM per node, on all of the node's GPUs.
GPUS=$(nvidia-smi -L | wc -l)
vllm serve "$MODEL" --port "$PORT" --data-parallel-size "$GPUS" --max-num-seqs 64 \
    >"logs/vllm-${SLURM_ARRAY_JOB_ID:-0}_${SLURM_ARRAY_TASK_ID:-0}.log" 2>&1 &
VLLM=$!
trap 'kill "$VLLM" 2>/dev/null || true' EXIT
for _ in $(seq 1 180); do
    curl -sf "http://localhost:${PORT}/v1/models" >/dev/null && break
    kill -0 "$VLLM" 2>/dev/null || { echo "vLLM exited before it was ready" >&2; exit 1; }
    sleep 5
done

ARGS=(--run "$SAFEBENCH_RUN" --concurrency "$CONCURRENCY")
[ -n "$TARGETS" ] && ARGS+=(--targets "$TARGETS")
# SLURM's TERM (120 s before the limit, --signal above) reaches the worker, which gives its leases
# back so other tasks take the items at once instead of after the lease expiry.
safebench worker "${ARGS[@]}" &
WORKER=$!
trap 'kill -TERM "$WORKER" 2>/dev/null || true' TERM
code=0
wait "$WORKER" || code=$?
# A trapped TERM interrupts `wait` early: wait again for the worker to finish giving its leases back.
if kill -0 "$WORKER" 2>/dev/null; then
    code=0
    wait "$WORKER" || code=$?
fi
exit "$code"
