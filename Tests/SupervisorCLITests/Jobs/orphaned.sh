# Attempt 1 leaves what a browser script leaves: files in its user-data dir and a process
# in a session of its own; then it waits forever. A later attempt completes at once.
if [ "$SUPERVISOR_ATTEMPT" != 1 ]; then
    echo "::result {\"attempt\": $SUPERVISOR_ATTEMPT}"
    exit 0
fi
mkdir -p "$SUPERVISOR_USER_DATA_DIR/Default"
echo cache > "$SUPERVISOR_USER_DATA_DIR/Default/Cache"
echo "$SUPERVISOR_USER_DATA_DIR" > "$SUPERVISOR_ARTIFACTS_DIR/user-data.txt"
setsid sh -c 'echo $$ > "$SUPERVISOR_ARTIFACTS_DIR/setsid.pid"; exec sleep 1000' </dev/null >/dev/null 2>&1 &
while [ ! -s "$SUPERVISOR_ARTIFACTS_DIR/setsid.pid" ]; do sleep 0.02; done
echo "::progress 1 ready"
while :; do sleep 1; done
