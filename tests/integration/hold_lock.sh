#!/usr/bin/env bash
# Hold the lock of a copy pool from another process, as a concurrent run would.
#   hold_lock.sh STATE_DIR POOL PIDFILE SECONDS   # start holder, wait until it holds the lock
#   hold_lock.sh --release PIDFILE                # stop that holder (its process group, by id)
set -euo pipefail
if [[ $1 == --release ]]; then
    pid=$(cat "$2")
    kill -- "-$pid" 2>/dev/null || true
    rm -f "$2"
    exit 0
fi
state_dir=$1 pool=$2 pidfile=$3 seconds=$4
# The lock file of a pool, as the store names it (see _store.py).
lock="$state_dir/.$pool.lock"
[[ -e $lock ]] || { echo "no lock file $lock: is pool $pool defined?" >&2; exit 1; }
setsid flock "$lock" sleep "$seconds" </dev/null >/dev/null 2>&1 &
echo $! >"$pidfile"
for _ in $(seq 100); do
    if ! flock -n "$lock" true; then
        exit 0
    fi
    sleep 0.1
done
echo "the holder did not take $lock" >&2
exit 1
