#!/usr/bin/env bash
# A private Slurm cluster on this host, in a directory of its own: a munged, a slurmctld and
# several slurmd nodes, all configured, logging and keeping state under DIR. Nothing is
# written under /etc, no system daemon is touched, and stop ends exactly the processes start
# began, by their pid files.
#
#   scripts/slurm/cluster.sh start DIR [NODES]   install Slurm if missing, start, wait idle
#   scripts/slurm/cluster.sh stop DIR            cancel jobs, wait for the queue, stop all
#   scripts/slurm/cluster.sh status DIR          the nodes and the queue
#
# After start, `source DIR/env` points Slurm's commands (sbatch, squeue, sinfo, scontrol) at
# the cluster: it sets SLURM_CONF. Each node is declared with 4 CPUs and 4 GiB whatever the
# machine has (SlurmdParameters=config_overrides). MODHOST_SLURM_NODES sets the default node
# count (3), MODHOST_SLURM_TIMEOUT the seconds to wait for the nodes (60). Two partitions:
# `main` (the default) and `short` (MaxTime=30), both over every node.
# MODHOST_SLURM_PLUGIN_DIR puts a directory before Slurm's own in PluginDir (where a
# job_submit_modhost.so is found), and MODHOST_SLURM_CONF_EXTRA is appended to slurm.conf
# (for instance "JobSubmitPlugins=modhost"; a SchedulerParameters line there replaces the
# cluster's own "batch_sched_delay=0").
set -euo pipefail

usage() {
    sed -n '2,19p' "$0" | sed 's/^# \{0,1\}//' >&2
    exit 2
}

as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

# Debian's packages, installed only when a command is missing.
install_slurm() {
    if command -v slurmctld >/dev/null && command -v slurmd >/dev/null && command -v munged >/dev/null \
        && command -v sbatch >/dev/null && [ -f /usr/include/slurm/slurm.h ]; then
        return
    fi
    echo "cluster.sh: installing slurm-wlm, munge and libslurm-dev" >&2
    as_root apt-get update -q >&2
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
        slurm-wlm munge libslurm-dev >&2
}

# N ports free now on 127.0.0.1, one per line (bound together so they differ, then freed).
free_ports() {
    python3 - "$1" <<'EOF'
import socket, sys
held = []
for _ in range(int(sys.argv[1])):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    held.append(s)
for s in held:
    print(s.getsockname()[1])
EOF
}

plugin_dir() {
    local dir
    for dir in /usr/lib/x86_64-linux-gnu/slurm-wlm /usr/lib/aarch64-linux-gnu/slurm-wlm /usr/lib/slurm-wlm /usr/lib64/slurm; do
        if [ -d "$dir" ]; then echo "$dir"; return; fi
    done
    echo "cluster.sh: Slurm's plugin directory was not found" >&2
    exit 1
}

# The pid in a pid file, if that process is alive.
live_pid() {
    local pid
    [ -f "$1" ] || return 1
    pid=$(cat "$1" 2>/dev/null) || return 1
    [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null && echo "$pid"
}

log_tails() {
    local log
    for log in "$DIR"/log/*.log; do
        [ -f "$log" ] || continue
        echo "--- last lines of $log" >&2
        tail -n 15 "$log" >&2
    done
}

# Stops the processes of the given pid files together: SIGTERM to all, then SIGKILL to any
# still there after 10 s. (Each daemon takes about 2 s to go.)
stop_pid_files() {
    local pids=() pid_file pid i
    for pid_file in "$@"; do
        if pid=$(live_pid "$pid_file"); then
            kill -TERM "$pid" 2>/dev/null || true
            pids+=("$pid")
        fi
    done
    for i in $(seq 100); do
        local alive=0
        for pid in "${pids[@]}"; do
            kill -0 "$pid" 2>/dev/null && alive=1
        done
        [ "$alive" -eq 0 ] && break
        sleep 0.1
    done
    for pid in "${pids[@]}"; do
        if kill -0 "$pid" 2>/dev/null; then
            echo "cluster.sh: pid $pid ignored SIGTERM for 10 s; SIGKILL" >&2
            kill -KILL "$pid" 2>/dev/null || true
        fi
    done
    rm -f "$@"
}

# Runs a daemon's start command; if it fails, says which, shows the logs, stops what was
# started, and fails.
start_daemon() {
    if ! "$@"; then
        echo "cluster.sh: '$*' failed" >&2
        log_tails
        stop
        exit 1
    fi
}

start() {
    local nodes=${1:-${MODHOST_SLURM_NODES:-3}}
    local timeout=${MODHOST_SLURM_TIMEOUT:-60}
    if ! [[ "$nodes" =~ ^[1-9][0-9]*$ ]]; then
        echo "cluster.sh: NODES must be a positive number, not '$nodes'" >&2
        exit 2
    fi
    if [ -f "$DIR/run/slurmctld.pid" ] && live_pid "$DIR/run/slurmctld.pid" >/dev/null; then
        echo "cluster.sh: a cluster already runs in $DIR (stop it first)" >&2
        exit 1
    fi
    install_slurm
    mkdir -p "$DIR"/{munge,state,log,run}
    rm -f "$DIR"/log/*.log
    # Unix sockets (munged's, and each job step's in a node's spool directory) must have paths
    # under 108 bytes, which DIR may not allow: they go in a short directory of their own,
    # named in DIR/run/sockets and removed by stop.
    local sockets
    sockets=$(mktemp -d /tmp/modhost-slurm.XXXXXX)
    chmod 0755 "$sockets"
    echo "$sockets" >"$DIR/run/sockets"

    # munged, with a key, socket, pid, log and seed of its own (--force: it runs as root).
    head -c 1024 /dev/urandom >"$DIR/munge/munge.key"
    chmod 0400 "$DIR/munge/munge.key"
    start_daemon munged --force --key-file="$DIR/munge/munge.key" --socket="$sockets/munge.socket" \
        --pid-file="$DIR/run/munged.pid" --log-file="$DIR/log/munged.log" --seed-file="$DIR/munge/munge.seed"

    local ports host
    mapfile -t ports < <(free_ports $((nodes + 1)))
    host=$(hostname -s)
    {
        echo "# A private cluster made by scripts/slurm/cluster.sh; nothing here is system-wide."
        echo "ClusterName=modhost"
        echo "SlurmctldHost=$host(127.0.0.1)"
        echo "SlurmctldPort=${ports[0]}"
        echo "AuthType=auth/munge"
        echo "CredType=cred/munge"
        echo "AuthInfo=socket=$sockets/munge.socket"
        echo "SlurmUser=root"
        echo "SlurmdUser=root"
        echo "StateSaveLocation=$DIR/state"
        echo "SlurmdSpoolDir=$sockets/%n"
        echo "SlurmctldPidFile=$DIR/run/slurmctld.pid"
        echo "SlurmdPidFile=$DIR/run/slurmd-%n.pid"
        echo "SlurmctldLogFile=$DIR/log/slurmctld.log"
        echo "SlurmdLogFile=$DIR/log/slurmd-%n.log"
        echo "PluginDir=${MODHOST_SLURM_PLUGIN_DIR:+$MODHOST_SLURM_PLUGIN_DIR:}$(plugin_dir)"
        echo "MpiDefault=none"
        echo "SelectType=select/cons_tres"
        echo "SelectTypeParameters=CR_Core"
        echo "ProctrackType=proctrack/linuxproc"
        echo "TaskPlugin=task/none"
        echo "JobAcctGatherType=jobacct_gather/none"
        echo "AccountingStorageType=accounting_storage/none"
        echo "MailProg=/bin/true"
        echo "ReturnToService=2"
        echo "SchedulerType=sched/backfill"
        # A SchedulerParameters line of MODHOST_SLURM_CONF_EXTRA replaces this one (Slurm
        # complains of a key given twice).
        case "${MODHOST_SLURM_CONF_EXTRA:-}" in
        *SchedulerParameters=*) ;;
        *) echo "SchedulerParameters=batch_sched_delay=0" ;;
        esac
        echo "SlurmdParameters=config_overrides"
        echo "TreeWidth=65533"
        local i
        for i in $(seq "$nodes"); do
            echo "NodeName=node$i NodeAddr=127.0.0.1 Port=${ports[$i]} CPUs=4 RealMemory=4096 State=UNKNOWN"
            mkdir -p "$sockets/node$i"
        done
        echo "PartitionName=main Nodes=ALL Default=YES MaxTime=INFINITE State=UP"
        echo "PartitionName=short Nodes=ALL MaxTime=30 State=UP"
        if [ -n "${MODHOST_SLURM_CONF_EXTRA:-}" ]; then
            printf '%s\n' "$MODHOST_SLURM_CONF_EXTRA"
        fi
    } >"$DIR/slurm.conf"
    echo "export SLURM_CONF=$DIR/slurm.conf" >"$DIR/env"
    export SLURM_CONF="$DIR/slurm.conf"

    start_daemon slurmctld -i
    for i in $(seq "$nodes"); do
        start_daemon slurmd -N "node$i"
    done

    # Wait until every node is idle.
    local waited=0 states
    while true; do
        states=$(sinfo -h -N -p main -o '%T' 2>/dev/null | sort | uniq -c | tr -s ' ' || true)
        if [ "$(sinfo -h -N -p main -o '%T' 2>/dev/null | grep -c '^idle$' || true)" -eq "$nodes" ]; then
            break
        fi
        if [ "$waited" -ge $((timeout * 10)) ]; then
            echo "cluster.sh: the nodes are not idle after ${timeout} s (sinfo says:${states:- nothing})" >&2
            log_tails
            stop
            exit 1
        fi
        sleep 0.1
        waited=$((waited + 1))
    done
    echo "cluster.sh: $nodes node(s) idle in $DIR; source $DIR/env to use it"
}

stop() {
    if [ -f "$DIR/slurm.conf" ]; then
        export SLURM_CONF="$DIR/slurm.conf"
        # Jobs first: daemons stopped under a running job leave a slurmstepd behind.
        if live_pid "$DIR/run/slurmctld.pid" >/dev/null; then
            local ids i
            ids=$(squeue -h -o '%i' 2>/dev/null || true)
            if [ -n "$ids" ]; then
                # shellcheck disable=SC2086
                scancel $ids 2>/dev/null || true
                for i in $(seq 200); do
                    [ -z "$(squeue -h -o '%i' 2>/dev/null || true)" ] && break
                    sleep 0.1
                done
            fi
        fi
    fi
    # The nodes, then the controller, then munged (which the others need to the end).
    local nodes=("$DIR"/run/slurmd-*.pid)
    [ -f "${nodes[0]}" ] && stop_pid_files "${nodes[@]}"
    stop_pid_files "$DIR/run/slurmctld.pid"
    stop_pid_files "$DIR/run/munged.pid"
    # The short directory of the sockets and spools, once nothing uses it.
    local sockets
    sockets=$(cat "$DIR/run/sockets" 2>/dev/null || true)
    case "$sockets" in
        /tmp/modhost-slurm.??????) rm -rf "$sockets" ;;
    esac
    rm -f "$DIR/run/sockets"
}

status() {
    export SLURM_CONF="$DIR/slurm.conf"
    sinfo -N -p main
    squeue
}

[ $# -ge 2 ] || usage
command=$1
DIR=$(mkdir -p "$2" && cd "$2" && pwd)
case "$command" in
    start) start "${3:-}" ;;
    stop) stop ;;
    status) status ;;
    *) usage ;;
esac
