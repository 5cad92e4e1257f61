# Leaves one artifact, and things that must never be served as one.
printf 'hello\n' > "$SUPERVISOR_ARTIFACTS_DIR/report.txt"
ln -s /etc/passwd "$SUPERVISOR_ARTIFACTS_DIR/link"
mkdir "$SUPERVISOR_ARTIFACTS_DIR/sub"
printf 'nested\n' > "$SUPERVISOR_ARTIFACTS_DIR/sub/inner.txt"
