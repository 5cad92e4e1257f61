#!/bin/sh
# Counts down from the payload's "from" (default 10), one step a second, reporting i/n progress.
payload=$(cat)
from=$(printf '%s' "$payload" | sed -n 's/.*"from" *: *\([0-9][0-9]*\).*/\1/p')
from=${from:-10}
i=0
while [ "$i" -lt "$from" ]; do
    i=$((i + 1))
    echo "::progress $i/$from $((from - i)) to go"
    sleep 1
done
echo "::result {\"counted\": $from}"
