#!/usr/bin/env bash
# A one-machine Slurm for trying the shipped job array out, and for the tests: runs deploy/slurm-array.sbatch
# for real (slurmctld, slurmd, munge from Debian 12's packages) over INPUT into OUTPUT in TASKS array tasks
# (default 3), waits for the array, prints the merged accounting (`faceveil summary`) and exits with its code:
# 0 when every file was done exactly once, 3 when not.
#
#   bash deploy/slurm-local.sh INPUT OUTPUT [TASKS]
#
# It installs slurmctld, slurmd, slurm-client and munge where missing, writes a minimal configuration for this
# machine (one node, its cores and memory, no cgroup plugins) under $FACEVEIL_SLURM_DIR (default
# /tmp/faceveil-slurm), starts munged, slurmctld and slurmd if they are not running, and stops what it started
# when it ends. A machine that already runs Slurm is left alone: the array is submitted to it as it is.
# The shipped sbatch script is the one a cluster uses; only paths and counts are given on the command line
# (sbatch's options override its #SBATCH lines).
#
# Steps one at a time (the tests use them to cancel a task and resubmit it):
#   bash deploy/slurm-local.sh start                       # install, configure, start; prints the config
#   bash deploy/slurm-local.sh submit INPUT OUTPUT TASKS [sbatch options...]   # prints the job id
#   bash deploy/slurm-local.sh wait JOBID [SECONDS]        # until the job (every array task) has left the queue
#   bash deploy/slurm-local.sh stop                        # stop what `start` started
#
# FACEVEIL names the binary (default: target/release/faceveil, built if missing).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(dirname "$HERE")
STATE=${FACEVEIL_SLURM_DIR:-/tmp/faceveil-slurm}
BIN=${FACEVEIL:-$REPO/target/release/faceveil}
log() { echo "slurm-local: $*" >&2; }
SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"

# A Slurm this script did not start, answering with the system's own configuration.
foreign_slurm() {
  [ ! -f "$STATE/ours" ] && command -v scontrol >/dev/null && env -u SLURM_CONF scontrol ping 2>/dev/null | grep -q UP
}

install() {
  local pkgs=(slurmctld slurmd slurm-client munge) missing=()
  for p in "${pkgs[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  if ((${#missing[@]})); then
    log "installing Debian packages: ${missing[*]}"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
}

configure() {
  local host cpus mem
  host=$(hostname -s)
  cpus=$(nproc)
  mem=$(( $(awk '/MemTotal/ {print $2}' /proc/meminfo) / 1024 - 512 ))
  mkdir -p "$STATE/state" "$STATE/spool" "$STATE/logs"
  cat > "$STATE/slurm.conf" <<EOF
# Written by deploy/slurm-local.sh: one node, this machine.
ClusterName=faceveil-local
SlurmctldHost=$host(127.0.0.1)
AuthType=auth/munge
CryptoType=crypto/munge
SlurmUser=root
SlurmdUser=root
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
MpiDefault=none
ReturnToService=2
StateSaveLocation=$STATE/state
SlurmdSpoolDir=$STATE/spool
SlurmctldPidFile=$STATE/slurmctld.pid
SlurmdPidFile=$STATE/slurmd.pid
SlurmctldLogFile=$STATE/slurmctld.log
SlurmdLogFile=$STATE/slurmd.log
SlurmctldPort=6817
SlurmdPort=6818
KillWait=30
NodeName=$host NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$mem State=UNKNOWN
PartitionName=local Nodes=$host Default=YES MaxTime=INFINITE State=UP
EOF
}

munge_works() { munge -n 2>/dev/null | unmunge >/dev/null 2>&1; }

running() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

start() {
  if foreign_slurm; then
    log "a Slurm cluster already answers here: using it as it is"
    return
  fi
  install
  configure
  export SLURM_CONF=$STATE/slurm.conf
  touch "$STATE/ours"
  # munge: a key and its folders, then the daemon (as the munge user, as Debian runs it).
  if ! munge_works; then
    $SUDO mkdir -p /etc/munge /run/munge /var/lib/munge /var/log/munge
    [ -s /etc/munge/munge.key ] || $SUDO dd if=/dev/urandom of=/etc/munge/munge.key bs=1024 count=1 status=none
    $SUDO chown -R munge:munge /etc/munge /run/munge /var/lib/munge /var/log/munge
    $SUDO chmod 0700 /etc/munge /var/lib/munge /var/log/munge
    $SUDO chmod 0400 /etc/munge/munge.key
    $SUDO chmod 0755 /run/munge
    $SUDO runuser -u munge -- /usr/sbin/munged --pid-file=/run/munge/munged.pid
    echo started > "$STATE/munged.started"
    local i
    for i in $(seq 50); do munge_works && break; sleep 0.1; done
    munge_works || { log "munged did not start: /var/log/munge/munged.log"; return 1; }
  fi
  if ! running "$STATE/slurmctld.pid"; then
    $SUDO slurmctld -f "$SLURM_CONF"
    echo started > "$STATE/slurmctld.started"
  fi
  if ! running "$STATE/slurmd.pid"; then
    $SUDO slurmd -f "$SLURM_CONF"
    echo started > "$STATE/slurmd.started"
  fi
  # Until the node takes jobs.
  local i
  local deadline=$((SECONDS + 60))
  while [ "$SECONDS" -lt "$deadline" ]; do
    if timeout 5 sinfo -h -o %T 2>/dev/null | grep -qE '^(idle|mixed|allocated)'; then
      echo "$SLURM_CONF"
      return
    fi
    sleep 0.5
  done
  log "the local Slurm did not come up within 60 s; its logs: $STATE/slurmctld.log, $STATE/slurmd.log"
  tail -n 5 "$STATE/slurmctld.log" "$STATE/slurmd.log" >&2 || true
  return 1
}

stop() {
  [ -f "$STATE/ours" ] || return 0
  for d in slurmd slurmctld; do
    if [ -f "$STATE/$d.started" ] && running "$STATE/$d.pid"; then
      local pid i
      pid=$(cat "$STATE/$d.pid")
      $SUDO kill "$pid" 2>/dev/null || true
      # Until it has gone (a next start would find its port taken).
      for i in $(seq 100); do [ -d "/proc/$pid" ] && [ "$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null)" != Z ] || break; sleep 0.1; done
    fi
    rm -f "$STATE/$d.started"
  done
  if [ -f "$STATE/munged.started" ]; then
    running /run/munge/munged.pid && $SUDO kill "$(cat /run/munge/munged.pid)" 2>/dev/null || true
    rm -f "$STATE/munged.started"
  fi
  rm -f "$STATE/ours"
}

use_conf() { [ -f "$STATE/ours" ] && export SLURM_CONF=$STATE/slurm.conf; true; }

submit() { # INPUT OUTPUT TASKS [sbatch options...]
  local input output tasks
  input=$(cd "$1" && pwd)
  mkdir -p "$2"
  output=$(cd "$2" && pwd)
  tasks=$3
  shift 3
  [ -x "$BIN" ] || (cd "$REPO" && cargo build --release --locked --bins >&2)
  use_conf
  mkdir -p "$STATE/logs"
  # Options after the defaults win (a later --array, say, for one task of the array).
  sbatch --parsable --array="0-$((tasks - 1))" --cpus-per-task=1 --mem=1G --time=2:00:00 \
    --output="$STATE/logs/faceveil-%A_%a.log" --chdir="$REPO" \
    --export="ALL,FACEVEIL=$BIN,INPUT=$input,OUTPUT=$output,SHARDS=$tasks" "$@" "$HERE/slurm-array.sbatch" | cut -d';' -f1
}

wait_for() { # JOBID [SECONDS]
  use_conf
  local job=$1 limit=${2:-3600} i=0
  while [ -n "$(squeue -h -j "$job" -o %i 2>/dev/null)" ]; do
    sleep 1
    i=$((i + 1))
    if [ "$i" -ge "$limit" ]; then
      log "job $job still queued or running after $limit s"
      return 1
    fi
  done
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  submit) shift; submit "$@" ;;
  wait) shift; wait_for "$@" ;;
  "" | -h | --help) sed -n '2,25p' "$0"; exit 2 ;;
  *)
    [ $# -ge 2 ] || { sed -n '2,25p' "$0"; exit 2; }
    input=$1 output=$2 tasks=${3:-3}
    started_here=0
    [ -f "$STATE/ours" ] || started_here=1
    [ "$started_here" = 1 ] && trap stop EXIT
    start >/dev/null
    job=$(submit "$input" "$output" "$tasks")
    log "submitted job array $job ($tasks tasks); logs in $STATE/logs/faceveil-${job}_*.log"
    wait_for "$job"
    code=0
    "$BIN" summary "$output" --shards "$tasks" || code=$?
    exit "$code"
    ;;
esac
