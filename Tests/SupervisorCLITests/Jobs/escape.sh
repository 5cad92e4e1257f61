# Leaves processes that try to outlive the job: one in a session of its own, one that
# ignores SIGTERM. Reports ready once both have written their pids, then waits forever.
setsid sh -c 'echo $$ > "$SUPERVISOR_ARTIFACTS_DIR/setsid.pid"; exec sleep 1000' &
sh -c 'trap "" TERM; echo $$ > "$SUPERVISOR_ARTIFACTS_DIR/stubborn.pid"; while :; do sleep 1; done' &
while [ ! -s "$SUPERVISOR_ARTIFACTS_DIR/setsid.pid" ] || [ ! -s "$SUPERVISOR_ARTIFACTS_DIR/stubborn.pid" ]; do sleep 0.02; done
echo "::progress 1 ready"
trap "" TERM
while :; do sleep 1; done
