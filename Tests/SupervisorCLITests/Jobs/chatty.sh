# Malformed markers, a line on stderr, then more output than max_log_bytes keeps.
echo "::progress abc"
echo "::unknown thing"
echo "::progress 150"
echo "to stderr" >&2
echo "also to stderr" >&2
awk 'BEGIN { for (i = 1; i <= 20000; i++) printf "line %d of the flood\n", i }'
