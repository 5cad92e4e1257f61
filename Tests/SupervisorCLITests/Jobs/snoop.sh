# Tries what Landlock must refuse and allow. The payload is a string of five paths: the
# store, the config, another attempt's work directory, a file to create outside, and a
# file under the type's read_paths. Reports "allowed" or "denied" for each.
set -- $(tr -d '"' < "$SUPERVISOR_PAYLOAD_FILE")
verdict() { if "$@" > /dev/null 2>&1; then echo allowed; else echo denied; fi; }
store=$(verdict cat "$1")
config=$(verdict cat "$2")
other=$(verdict ls "$3")
outside=$(verdict touch "$4")
readable=$(verdict cat "$5")
own=$(verdict touch "$SUPERVISOR_WORK_DIR/mine" "$SUPERVISOR_ARTIFACTS_DIR/kept" "$TMPDIR/scratch")
echo "::result {\"store\": \"$store\", \"config\": \"$config\", \"otherAttempt\": \"$other\", \"outside\": \"$outside\", \"readPath\": \"$readable\", \"own\": \"$own\"}"
