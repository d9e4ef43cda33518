#!/usr/bin/env bash
# A real single-node SLURM on localhost, for trying sweeps on SLURM without a cluster.
#   scripts/slurm_local.sh up       install (Debian packages munge, slurm-wlm) and start munged, slurmctld, slurmd
#   scripts/slurm_local.sh down     stop them (state stays in $SLURM_LOCAL_DIR)
#   scripts/slurm_local.sh status   daemons and node state
# Idempotent; root only; loopback only. Everything lives in $SLURM_LOCAL_DIR (default
# /tmp/runner-slurm); clients find the cluster through SLURM_CONF=$SLURM_LOCAL_DIR/slurm.conf.
set -euo pipefail

DIR=${SLURM_LOCAL_DIR:-/tmp/runner-slurm}
CONF=$DIR/slurm.conf
export SLURM_CONF=$CONF

need_root() { [ "$(id -u)" = 0 ] || { echo "slurm_local.sh: must run as root" >&2; exit 1; }; }

install_packages() {
    command -v slurmctld >/dev/null && command -v munged >/dev/null && return
    echo "installing munge and slurm-wlm (Debian packages)..."
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq munge slurm-wlm >/dev/null
}

write_config() {
    mkdir -p "$DIR/state" "$DIR/spool" "$DIR/log"
    local cpus mem
    cpus=$(nproc)
    mem=$(( $(awk '/MemTotal/ {print $2}' /proc/meminfo) / 1024 - 1024 ))
    cat > "$CONF" <<CONF
# written by scripts/slurm_local.sh
ClusterName=runner-local
SlurmctldHost=localhost(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
# a requeued job waits cred_expire seconds before it may start again (default 120)
AuthInfo=cred_expire=10
StateSaveLocation=$DIR/state
SlurmdSpoolDir=$DIR/spool
SlurmctldPidFile=$DIR/slurmctld.pid
SlurmdPidFile=$DIR/slurmd.pid
SlurmctldLogFile=$DIR/log/slurmctld.log
SlurmdLogFile=$DIR/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
ReturnToService=2
MpiDefault=none
KillWait=10
NodeName=localhost NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$mem State=UNKNOWN
PartitionName=local Nodes=localhost Default=YES MaxTime=INFINITE State=UP
CONF
}

running() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

up() {
    need_root
    install_packages
    write_config
    if ! pgrep -x munged >/dev/null; then
        [ -s /etc/munge/munge.key ] || mungekey --create --keyfile /etc/munge/munge.key
        chown munge:munge /etc/munge/munge.key 2>/dev/null || true
        chmod 400 /etc/munge/munge.key
        mkdir -p /run/munge /var/log/munge /var/lib/munge
        chown munge:munge /run/munge /var/log/munge /var/lib/munge 2>/dev/null || true
        su -s /bin/sh munge -c munged 2>/dev/null || munged --force
    fi
    running "$DIR/slurmctld.pid" || slurmctld -f "$CONF"
    running "$DIR/slurmd.pid" || slurmd -f "$CONF" -N localhost
    for _ in $(seq 60); do
        if sinfo -h -o %T 2>/dev/null | grep -qE '^(idle|mixed|allocated)'; then
            scontrol update nodename=localhost state=resume >/dev/null 2>&1 || true
            echo "slurm up: $(sinfo -h -o '%P %D %T %c cpus')   (export SLURM_CONF=$CONF)"
            return
        fi
        sleep 1
    done
    echo "slurm_local.sh: the node did not come up; logs in $DIR/log" >&2
    sinfo >&2 || true
    exit 1
}

down() {
    need_root
    for daemon in slurmd slurmctld; do
        if running "$DIR/$daemon.pid"; then
            kill "$(cat "$DIR/$daemon.pid")"
        fi
    done
    for _ in $(seq 20); do
        running "$DIR/slurmd.pid" || running "$DIR/slurmctld.pid" || break
        sleep 0.5
    done
    echo "slurm down"
}

status() {
    for daemon in slurmctld slurmd; do
        if running "$DIR/$daemon.pid"; then echo "$daemon: running"; else echo "$daemon: stopped"; fi
    done
    pgrep -x munged >/dev/null && echo "munged: running" || echo "munged: stopped"
    if running "$DIR/slurmctld.pid"; then sinfo; squeue; fi
}

case "${1:-}" in
    up) up ;;
    down) down ;;
    status) status ;;
    *) echo "usage: $0 up|down|status" >&2; exit 2 ;;
esac
