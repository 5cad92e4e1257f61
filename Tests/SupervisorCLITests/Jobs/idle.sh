# Says one line, then nothing while it waits for a gate that never opens.
echo "started"
while :; do sleep 1; done
