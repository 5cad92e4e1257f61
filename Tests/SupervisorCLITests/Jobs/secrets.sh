# Copies what it was given as secrets, and the file's mode, where the test can see them.
stat -c %a "$SUPERVISOR_SECRETS_FILE" > "$SUPERVISOR_ARTIFACTS_DIR/mode.txt"
cp "$SUPERVISOR_SECRETS_FILE" "$SUPERVISOR_ARTIFACTS_DIR/secrets.json"
