# Records its port and directories, reports ready, and holds until the gate exists.
gate=$(tr -d '"' < "$SUPERVISOR_PAYLOAD_FILE")
echo "$SUPERVISOR_DEBUG_PORT $SUPERVISOR_WORK_DIR $SUPERVISOR_USER_DATA_DIR" > "$SUPERVISOR_ARTIFACTS_DIR/seen.txt"
echo "::progress 1 ready"
while [ ! -e "$gate" ]; do sleep 0.02; done
