# Reports, then takes memory 8 MiB at a time (each page written) until the type's memory_max stops it.
echo "::progress 1 taking memory"
exec /usr/bin/python3 -c 'b = [b"x" * (8 << 20) for _ in range(256)]'
