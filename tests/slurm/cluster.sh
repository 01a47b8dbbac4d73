# cluster.sh - a throw-away single-node Slurm on localhost, for tests (sourced by bash).
#
#   source tests/slurm/cluster.sh
#   cluster_start DIR      # munged, slurmctld, slurmd with every file under DIR; exports SLURM_CONF
#   ...                    # sbatch, squeue, scancel talk to it
#   cluster_stop           # cancels what is left, stops the daemons it started (by pid)
#
# cluster_start installs an EXIT trap that calls cluster_stop. It returns non-zero
# with the reason in CLUSTER_WHY when Slurm cannot run here (packages missing, not
# root, a daemon that does not come up); the daemons' logs are in DIR.
#
# What it sets up (no systemd, nothing under /etc): a fresh munge key and munged with
# its own socket, pid and log; a slurm.conf with ProctrackType=proctrack/linuxproc,
# TaskPlugin=task/none, no accounting, one node named `hostname -s` with the CPUs and
# memory slurmd -C reports, one partition; slurmctld and slurmd in the foreground (-D)
# on two free TCP ports.

CLUSTER_PIDS=()  # "name:pid" of every daemon started, in start order
CLUSTER_DIR=
CLUSTER_WHY=

cluster_log() { echo "cluster: $*" >&2; }

# Prints a free TCP port on localhost (the kernel's choice).
cluster_free_port() {
  /usr/bin/python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# Waits up to $1 seconds for the command "${@:2}" to succeed.
cluster_wait() {
  local limit=$1 i
  shift
  for ((i = 0; i < limit * 5; i++)); do
    if "$@" >/dev/null 2>&1; then return 0; fi
    sleep 0.2
  done
  return 1
}

# Is process $1 running? (A child that exited stays a zombie until waited for.)
cluster_running() {
  local stat
  stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
  stat=${stat##*) }
  [ "${stat%% *}" != Z ]
}

cluster_ended() { ! cluster_running "$1"; }

cluster_alive() {  # name: is that daemon still running?
  local entry
  for entry in "${CLUSTER_PIDS[@]}"; do
    if [ "${entry%%:*}" = "$1" ]; then cluster_running "${entry#*:}"; return; fi
  done
  return 1
}

cluster_no_jobs() {  # nothing pending, running or completing
  [ -z "$(squeue -h -o %i 2>/dev/null)" ]
}

cluster_no_steps() {  # a running job step keeps a socket in slurmd's spool dir
  [ -z "$(find "$CLUSTER_DIR/spool" -type s 2>/dev/null)" ]
}

cluster_node_idle() {
  [ "$(sinfo -h -n "$CLUSTER_NODE" -o %t 2>/dev/null)" = idle ]
}

# Starts daemon NAME with the remaining arguments in the background, output in DIR/NAME.out.
cluster_spawn() {
  local name=$1
  shift
  "$@" >"$CLUSTER_DIR/$name.out" 2>&1 &
  CLUSTER_PIDS+=("$name:$!")
}

cluster_start() {
  CLUSTER_DIR=$1
  local tool
  for tool in munged mungekey slurmctld slurmd sinfo sbatch squeue scancel; do
    if ! command -v "$tool" >/dev/null 2>&1; then
      CLUSTER_WHY="$tool not found (Debian: apt-get install slurm-wlm munge)"
      return 1
    fi
  done
  if [ "$(id -u)" != 0 ]; then
    CLUSTER_WHY="slurmd must run as root to start jobs (running as $(id -un))"
    return 1
  fi
  mkdir -p "$CLUSTER_DIR"
  CLUSTER_DIR=$(cd "$CLUSTER_DIR" && pwd)
  chmod 700 "$CLUSTER_DIR"
  rm -rf "$CLUSTER_DIR/munge" "$CLUSTER_DIR/state" "$CLUSTER_DIR/spool"
  mkdir -p "$CLUSTER_DIR/munge" "$CLUSTER_DIR/state" "$CLUSTER_DIR/spool"
  chmod 700 "$CLUSTER_DIR/munge"
  trap cluster_stop EXIT

  local m=$CLUSTER_DIR/munge
  if ! mungekey --create --keyfile="$m/munge.key" >"$m/mungekey.out" 2>&1; then
    CLUSTER_WHY="mungekey failed: $(tail -n1 "$m/mungekey.out")"
    return 1
  fi
  # --force: the socket's directory lives under /tmp, which munged finds too open.
  cluster_spawn munged munged --foreground --force --socket="$m/socket" --key-file="$m/munge.key" \
    --pid-file="$m/munged.pid" --log-file="$m/munged.log" --seed-file="$m/munged.seed"
  if ! cluster_wait 10 test -S "$m/socket" || ! cluster_alive munged; then
    CLUSTER_WHY="munged did not start: $(tail -n1 "$CLUSTER_DIR/munged.out" 2>/dev/null)"
    return 1
  fi

  CLUSTER_NODE=$(hostname -s)
  local node_line ctld_port slurmd_port
  node_line=$(slurmd -C 2>/dev/null | grep '^NodeName=')
  if [ -z "$node_line" ]; then
    CLUSTER_WHY="slurmd -C did not describe this machine"
    return 1
  fi
  # slurmd -C names the node by its full host name; Slurm wants `hostname -s`.
  node_line="NodeName=$CLUSTER_NODE ${node_line#NodeName=* }"
  ctld_port=$(cluster_free_port) && slurmd_port=$(cluster_free_port) || {
    CLUSTER_WHY="no free TCP port found"
    return 1
  }
  export SLURM_CONF=$CLUSTER_DIR/slurm.conf
  cat >"$SLURM_CONF" <<EOF
ClusterName=fusenettest
SlurmctldHost=$CLUSTER_NODE
SlurmctldPort=$ctld_port
SlurmdPort=$slurmd_port
SlurmUser=$(id -un)
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$m/socket
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
MpiDefault=none
SwitchType=switch/none
MailProg=/bin/true
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerType=sched/backfill
ReturnToService=2
KillWait=5
MinJobAge=300
StateSaveLocation=$CLUSTER_DIR/state
SlurmdSpoolDir=$CLUSTER_DIR/spool
SlurmctldPidFile=$CLUSTER_DIR/slurmctld.pid
SlurmdPidFile=$CLUSTER_DIR/slurmd.pid
SlurmctldLogFile=$CLUSTER_DIR/slurmctld.log
SlurmdLogFile=$CLUSTER_DIR/slurmd.log
$node_line State=UNKNOWN
PartitionName=test Nodes=$CLUSTER_NODE Default=YES MaxTime=INFINITE State=UP
EOF
  cluster_spawn slurmctld slurmctld -D -f "$SLURM_CONF"
  cluster_spawn slurmd slurmd -D -f "$SLURM_CONF"
  if ! cluster_wait 60 cluster_node_idle; then
    local d
    for d in slurmctld slurmd; do
      if ! cluster_alive $d; then
        CLUSTER_WHY="$d exited: $(grep -h -m1 -i -E 'fatal|error' "$CLUSTER_DIR/$d.out" "$CLUSTER_DIR/$d.log" 2>/dev/null | head -n1)"
        return 1
      fi
    done
    CLUSTER_WHY="node $CLUSTER_NODE is not idle after 60 s (sinfo: $(sinfo -h -o '%n %t' 2>&1 | head -n1))"
    return 1
  fi
  cluster_log "Slurm up: node $CLUSTER_NODE idle, slurmctld port $ctld_port, files in $CLUSTER_DIR"
}

# Job steps run under slurmstepd, which slurmd starts and detaches: they are ended
# through Slurm (scancel) and awaited before the daemons are stopped.
cluster_stop() {
  local entry pid i
  if cluster_alive slurmctld; then
    scancel --quiet --full --user="$(id -un)" 2>/dev/null || true
    cluster_wait 30 cluster_no_jobs || cluster_log "jobs still listed at stop"
  fi
  if [ -d "$CLUSTER_DIR/spool" ]; then
    cluster_wait 30 cluster_no_steps || cluster_log "job steps still running at stop"
  fi
  for ((i = ${#CLUSTER_PIDS[@]} - 1; i >= 0; i--)); do  # in reverse start order
    entry=${CLUSTER_PIDS[i]}
    pid=${entry#*:}
    kill -TERM "$pid" 2>/dev/null || continue
    cluster_wait 15 cluster_ended "$pid" || { cluster_log "${entry%%:*} ($pid) ignored SIGTERM"; kill -KILL "$pid" 2>/dev/null; }
    wait "$pid" 2>/dev/null || true
  done
  CLUSTER_PIDS=()
}
