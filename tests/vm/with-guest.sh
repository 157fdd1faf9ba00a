#!/usr/bin/env bash
# Run a command on the HOST while a throw-away VM is up as its managed host.
#
# Usage: tests/vm/with-guest.sh [--zfs] [--timeout SECONDS] -- COMMAND [ARG...]
#
# Boots the VM (tests/vm/run.sh --ssh) with an sshd that lets root in with a
# per-boot key, waits until a login works, runs COMMAND here with
#
#   PITCOPY_TARGET=vm                 the inventory host name of the guest
#   PITCOPY_TARGET_INVENTORY=FILE     an Ansible inventory with that host
#                                     (ssh, pipelining, /usr/bin/python3)
#   PITCOPY_TARGET_SSH_CONFIG=FILE    `ssh -F FILE vm CMD` runs CMD in the guest
#   PITCOPY_TARGET_ZFS=0|1            whether the guest has OpenZFS
#   PITCOPY_TARGET_RESULTS=DIR        a directory both sides write (same path)
#
# In the guest, `. /run/pitcopy-ssh/env.sh` gives a command over ssh the
# environment guest.sh gives its own command (venv, collection, PATH).
#
# and shuts the guest down when COMMAND ends. Exit status: COMMAND's (124 on
# timeout, 125 when the VM never let us in).
#
# Why: under software emulation an Ansible task costs ~43 s when
# ansible-playbook itself runs in the guest (its own start, templating,
# forks). With the controller here only the modules run emulated: the split
# every real deployment has (a controller, managed hosts over ssh).
set -uo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ZFS=0
TIMEOUT=${PITCOPY_VM_TIMEOUT:-4800}
while [ $# -gt 0 ]; do
    case $1 in
        --zfs) ZFS=1; shift ;;
        --timeout) TIMEOUT=${2:?}; shift 2 ;;
        --) shift; break ;;
        *) echo "with-guest.sh: unknown option '$1' (accepted: --zfs, --timeout S, -- COMMAND)" >&2; exit 2 ;;
    esac
done
[ $# -gt 0 ] || { echo "with-guest.sh: no command given" >&2; exit 2; }
[[ $TIMEOUT =~ ^[0-9]+$ ]] || { echo "with-guest.sh: --timeout must be seconds, got '$TIMEOUT'" >&2; exit 2; }

RESULTS=$(mktemp -d /tmp/pitcopy-vm.XXXXXX)
# A port nobody listens on now; slirp binds it when the VM starts.
PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])') || exit 125
vm_args=(--ssh "$PORT" --results "$RESULTS" --timeout "$TIMEOUT")
[ "$ZFS" = 1 ] && vm_args+=(--zfs)

# The guest idles until we are done; the stop file crosses the shared
# results directory. The console goes to a file: qemu makes its stdio
# non-blocking, which ansible-playbook refuses to share.
# shellcheck disable=SC2016  # expanded by the guest's shell
"$HERE/run.sh" "${vm_args[@]}" -- bash -c 'while [ ! -e "$PITCOPY_VM_RESULTS/stop" ]; do sleep 1; done' \
    >"$RESULTS/console.log" 2>&1 &
vm_pid=$!
stop_vm() {
    touch "$RESULTS/stop"
    local _
    for _ in $(seq 60); do
        kill -0 "$vm_pid" 2>/dev/null || break
        sleep 1
    done
    if kill -0 "$vm_pid" 2>/dev/null; then
        echo "[with-guest] the VM did not shut down within 60 s; killing it" >&2
        pkill -P "$vm_pid" 2>/dev/null
        kill "$vm_pid" 2>/dev/null
    fi
    wait "$vm_pid" 2>/dev/null
}
trap stop_vm EXIT

cfg=$RESULTS/ssh/config
t0=$SECONDS
while [ ! -s "$RESULTS/ssh-ready" ]; do
    if ! kill -0 "$vm_pid" 2>/dev/null; then
        echo "[with-guest] the VM ended before its sshd was up; its console:" >&2
        tail -n 30 "$RESULTS/console.log" >&2
        exit 125
    fi
    if [ $((SECONDS - t0)) -gt 600 ]; then
        echo "[with-guest] no sshd in the guest after 600 s" >&2
        exit 125
    fi
    sleep 2
done
printf '[127.0.0.1]:%s %s\n' "$PORT" "$(cut -d' ' -f1,2 "$RESULTS/ssh/host_key.pub")" > "$RESULTS/ssh/known_hosts"
cat > "$cfg" <<EOF
Host vm
    HostName 127.0.0.1
    Port $PORT
    User root
    IdentityFile $RESULTS/ssh/id_ed25519
    IdentitiesOnly yes
    UserKnownHostsFile $RESULTS/ssh/known_hosts
    StrictHostKeyChecking yes
    ControlMaster auto
    ControlPath $RESULTS/ssh/cm-%C
    ControlPersist 30m
    ServerAliveInterval 30
    ServerAliveCountMax 20
    LogLevel ERROR
EOF
t1=$SECONDS
until ssh -F "$cfg" vm true 2>"$RESULTS/ssh/login.err"; do
    # sshd is listening already: a refusal that lasts is not a slow boot.
    if [ $((SECONDS - t1)) -gt 120 ] || ! kill -0 "$vm_pid" 2>/dev/null; then
        echo "[with-guest] cannot log in to the guest: $(cat "$RESULTS/ssh/login.err")" >&2
        exit 125
    fi
    sleep 2
done
echo "[with-guest] guest reachable over ssh after $((SECONDS - t0)) s (port $PORT)" >&2

cat > "$RESULTS/inventory.ini" <<EOF
[pitcopy_vm]
vm

[pitcopy_vm:vars]
ansible_connection=ssh
ansible_ssh_common_args=-F $cfg
ansible_ssh_pipelining=true
ansible_ssh_transfer_method=piped
ansible_python_interpreter=/usr/bin/python3
ansible_remote_tmp=/tmp/.ansible-remote
# Ansible names its ssh master after host, port and user: the same "vm" for
# every guest, so two guests up at once would share one connection.
ansible_control_path_dir=$RESULTS/ssh/acp
# We log in as root. become (su here: no sudo on these hosts) would turn
# pipelining off and cost four more round trips per task.
ansible_become=false
EOF

export PITCOPY_TARGET=vm PITCOPY_TARGET_INVENTORY=$RESULTS/inventory.ini
export PITCOPY_TARGET_SSH_CONFIG=$cfg PITCOPY_TARGET_ZFS=$ZFS PITCOPY_TARGET_RESULTS=$RESULTS
"$@"
rc=$?
echo "[with-guest] command exit status $rc after $((SECONDS - t0)) s" >&2
stop_vm
trap - EXIT
grep -a '^\[vm\]' "$RESULTS/console.log" >&2
exit "$rc"
