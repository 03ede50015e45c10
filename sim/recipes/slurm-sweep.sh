#!/usr/bin/env bash
# A sweep split over a Slurm job array, then merged by a job that waits for
# the whole array (afterany: it runs even when a shard failed, and reports
# it). Each array task sweeps the shard of its SLURM_ARRAY_TASK_ID
# (`--shard auto`); the merge job's exit code is the sweep's verdict.
#
#   sim/recipes/slurm-sweep.sh SHARDS SEEDS OUTDIR [SIM...]
#   e.g. sim/recipes/slurm-sweep.sh 4 1000 /shared/sweep target/release/sim
#
# SIM defaults to target/release/sim (build it first, on a path every node
# sees); OUTDIR must be shared too. Prints the two job ids; the merge job's
# output is OUTDIR/merge.out.
set -euo pipefail
shards=${1:?shards}; seeds=${2:?seeds}; out=${3:?output folder}; shift 3
sim=("${@:-target/release/sim}")
mkdir -p "$out"
array=$(sbatch --parsable --array=0-$((shards - 1)) --job-name=sim-sweep \
  --output="$out/shard-%a.out" \
  --wrap="${sim[*]} sweep --seeds $seeds --shard auto --json $out/shard-\$SLURM_ARRAY_TASK_ID.json")
merge=$(sbatch --parsable --dependency=afterany:"$array" --job-name=sim-merge \
  --output="$out/merge.out" \
  --wrap="${sim[*]} merge $out/shard-*.json")
echo "array $array, merge $merge"
