awk 'BEGIN { for (i = 1; i <= 1000000; i++) printf "::progress %d/1000000\n", i }'
