# Leaves what the job was given where the test can read it.
env > "$SUPERVISOR_ARTIFACTS_DIR/env.txt"
cat > "$SUPERVISOR_ARTIFACTS_DIR/stdin.json"
pwd > "$SUPERVISOR_ARTIFACTS_DIR/cwd.txt"
# Where TMPDIR leads: a short link to the work dir's tmp/ when that path is long.
cd "$TMPDIR" && pwd -P > "$SUPERVISOR_ARTIFACTS_DIR/tmpdir.txt"
