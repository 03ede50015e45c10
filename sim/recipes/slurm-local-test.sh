#!/usr/bin/env bash
# Slurm for real, on this one machine: installs Debian's slurm-wlm and munge
# (apt; needs root), starts a controller and one node, submits
# slurm-sweep.sh's array of shard sweeps and its afterany merge job, checks
# the merge's report and exit code against the single sweep, and stops what
# it started. Not in CI (it installs packages and runs daemons); measured
# here in the issue 26 note. Usage, from the repository root:
#
#   sim/recipes/slurm-local-test.sh [SHARDS] [SEEDS]     # default 4 shards, 200 seeds
set -euo pipefail
shards=${1:-4}; seeds=${2:-200}
root=$(pwd)
work=$(mktemp -d /tmp/slurm-sweep.XXXXXX)
started=()
cleanup() {
  for p in "${started[@]}"; do pkill -x "$p" 2>/dev/null || true; done
}
trap cleanup EXIT
t0=$(date +%s)

if ! command -v sbatch >/dev/null || ! command -v munged >/dev/null; then
  echo "== installing slurm-wlm and munge"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q slurm-wlm munge >/dev/null
fi
cargo build -q --locked --release -p sim
sim="$root/target/release/sim"

echo "== starting munge, slurmctld, slurmd (one node, $(nproc) CPUs)"
mkdir -p /etc/munge /var/lib/munge /var/log/munge /run/munge /var/spool/slurmctld /var/spool/slurmd /etc/slurm
[ -s /etc/munge/munge.key ] || dd if=/dev/urandom of=/etc/munge/munge.key bs=1024 count=1 status=none
chmod 400 /etc/munge/munge.key
pgrep -x munged >/dev/null || { munged --force; started+=(munged); }
host=$(hostname -s)
cat > /etc/slurm/slurm.conf <<CONF
ClusterName=local
SlurmctldHost=$host
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
StateSaveLocation=/var/spool/slurmctld
SlurmdSpoolDir=/var/spool/slurmd
ReturnToService=2
NodeName=$host CPUs=$(nproc) State=UNKNOWN
PartitionName=main Nodes=$host Default=YES MaxTime=INFINITE State=UP
CONF
pgrep -x slurmctld >/dev/null || { slurmctld; started+=(slurmctld); }
pgrep -x slurmd >/dev/null || { slurmd; started+=(slurmd); }
for _ in $(seq 60); do sinfo -h -o %T 2>/dev/null | grep -qE '^(idle|mixed|allocated)' && break; sleep 1; done
sinfo

echo "== the single sweep"
set +e
"$sim" sweep --seeds "$seeds" > "$work/single.out" 2>/dev/null
single=$?
set -e

echo "== the array of $shards shards and the merge job"
t1=$(date +%s)
ids=$(sim/recipes/slurm-sweep.sh "$shards" "$seeds" "$work/out" "$sim")
echo "$ids"
merge=${ids##* }
for _ in $(seq 3600); do
  state=$(sacct -n -X -j "$merge" -o State 2>/dev/null | head -1 | tr -d ' ' || true)
  [ -z "$state" ] && state=$(squeue -h -j "$merge" -o %T 2>/dev/null || true)
  case "$state" in COMPLETED|FAILED|CANCELLED*|TIMEOUT) break ;; "") [ -s "$work/out/merge.out" ] && ! squeue -h -j "$merge" | grep -q . && break ;; esac
  sleep 1
done
t2=$(date +%s)
merged_exit=$(scontrol show job "$merge" 2>/dev/null | grep -o 'ExitCode=[0-9]*' | head -1 | cut -d= -f2 || true)
[ -n "$merged_exit" ] || merged_exit=$(sacct -n -X -j "$merge" -o ExitCode 2>/dev/null | head -1 | cut -d: -f1 | tr -d ' ')

echo "== verdict"
if diff -u "$work/single.out" "$work/out/merge.out"; then
  echo "the merge's report is the single sweep's, line for line"
else
  echo "FAIL: the merge's report differs from the single sweep's"; exit 1
fi
if [ "$merged_exit" != "$single" ]; then
  echo "FAIL: merge exited $merged_exit, the single sweep $single"; exit 1
fi
tail -1 "$work/out/merge.out"
echo "PASS: $shards Slurm shards + an afterany merge = the single sweep (exit $single); \
array and merge $((t2 - t1)) s, all $((t2 - t0)) s"
