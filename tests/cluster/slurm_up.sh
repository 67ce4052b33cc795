#!/usr/bin/env bash
# A one-node SLURM on this machine (Debian's slurm-wlm and munge), for `make test-cluster`.
#   bash tests/cluster/slurm_up.sh up       install if needed (root, apt), configure, start; idempotent
#   bash tests/cluster/slurm_up.sh down     stop slurmd, slurmctld and munged
#   bash tests/cluster/slurm_up.sh status   sinfo
# The node is this host with all its CPUs and memory, in one partition `debug`; jobs may be
# requeued (JobRequeue=1) and are killed 5 s after SIGTERM (KillWait). State lives in $STATE.
set -euo pipefail
STATE=${ROBUSTGEN_SLURM_STATE:-/tmp/robustgen-slurm}
CONF_DIR=/etc/slurm
ACTION=${1:-up}

need_root() { [ "$(id -u)" = 0 ] || { echo "slurm_up.sh: run as root (it configures /etc/slurm and starts daemons)" >&2; exit 2; }; }

install() {
  command -v slurmctld >/dev/null && command -v munged >/dev/null && return
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq slurm-wlm munge
}

configure() {
  local host cpus mem
  host=$(hostname -s)
  cpus=$(nproc)
  mem=$(( $(awk '/MemTotal/ {print $2}' /proc/meminfo) / 1024 - 512 ))
  mkdir -p "$STATE/slurmd" "$STATE/ctld" "$CONF_DIR"
  cat > "$CONF_DIR/slurm.conf" <<CONF
# written by robustgen tests/cluster/slurm_up.sh
ClusterName=robustgen
SlurmctldHost=$host
AuthType=auth/munge
CredType=cred/munge
SlurmUser=root
SlurmdUser=root
StateSaveLocation=$STATE/ctld
SlurmdSpoolDir=$STATE/slurmd
SlurmctldPidFile=$STATE/slurmctld.pid
SlurmdPidFile=$STATE/slurmd.pid
SlurmctldLogFile=$STATE/slurmctld.log
SlurmdLogFile=$STATE/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU_Memory
MpiDefault=none
ReturnToService=2
JobRequeue=1
KillWait=5
MinJobAge=3600
NodeName=$host CPUs=$cpus RealMemory=$mem State=UNKNOWN
PartitionName=debug Nodes=$host Default=YES MaxTime=INFINITE State=UP
CONF
}

start() {
  if [ ! -s /etc/munge/munge.key ]; then
    mkdir -p /etc/munge && dd if=/dev/urandom of=/etc/munge/munge.key bs=1 count=1024 status=none
    chown munge:munge /etc/munge/munge.key && chmod 400 /etc/munge/munge.key
  fi
  mkdir -p /run/munge /var/log/munge /var/lib/munge && chown munge:munge /run/munge /var/log/munge /var/lib/munge
  pgrep -x munged >/dev/null || runuser -u munge -- munged
  pgrep -x slurmctld >/dev/null || slurmctld
  pgrep -x slurmd >/dev/null || slurmd
  for _ in $(seq 60); do
    if sinfo -h -o '%T' 2>/dev/null | grep -qE '^(idle|mixed|allocated)'; then
      scontrol update NodeName="$(hostname -s)" State=RESUME >/dev/null 2>&1 || true
      sinfo; return 0
    fi
    sleep 1
  done
  echo "slurm_up.sh: the node did not come up; see $STATE/slurmctld.log and $STATE/slurmd.log" >&2
  sinfo -R || true
  exit 1
}

stop() {
  pkill -x slurmd || true
  pkill -x slurmctld || true
  pkill -x munged || true
}

case "$ACTION" in
  up) need_root; install; configure; start ;;
  down) need_root; stop ;;
  status) sinfo ;;
  *) echo "usage: $0 up|down|status" >&2; exit 2 ;;
esac
