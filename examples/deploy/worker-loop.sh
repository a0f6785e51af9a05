#!/usr/bin/env bash
# A plain loop for a host with neither SLURM nor systemd: run a worker, restart it when it dies, stop
# when it exits 0 (the run has no work left for it).
#
#   export SAFEBENCH_STORE='postgresql://safebench:PASSWORD@db.example.org:5432/safebench'
#   nohup examples/deploy/worker-loop.sh qwen-vl-2025-06 --targets local-vllm --concurrency 16 \
#       >worker.log 2>&1 &
#
# Start one per host (or several, each with a smaller --concurrency): workers on the same run never
# take the same item. Exit code 2 means a bad store URL, an unreachable database or a run that does
# not exist: retried a few times (a database restart), then given up.
set -uo pipefail

RUN="${1:?usage: worker-loop.sh RUN [worker options...]}"
shift
: "${SAFEBENCH_STORE:?export SAFEBENCH_STORE (the run store URL): never pass it on the command line}"

delay=5
failures_of_setup=0
while true; do
    safebench worker --run "$RUN" "$@"
    code=$?
    case "$code" in
        0) echo "$(date -Is) run $RUN: no work left"; exit 0 ;;
        2) failures_of_setup=$((failures_of_setup + 1))
           if [ "$failures_of_setup" -ge 5 ]; then echo "$(date -Is) giving up (exit 2 five times)" >&2; exit 2; fi ;;
        130|143) echo "$(date -Is) stopped"; exit "$code" ;;   # Ctrl-C / SIGTERM: the operator meant it
        *) failures_of_setup=0 ;;
    esac
    echo "$(date -Is) worker exited with $code; restarting in ${delay}s" >&2
    sleep "$delay"
    delay=$(( delay < 300 ? delay * 2 : 300 ))
done
