# A little on each stream.
echo "out 1"
echo "err 1" >&2
echo "out 2"
echo "err 2" >&2
