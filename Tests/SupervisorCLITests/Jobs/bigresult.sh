# A ::result just over 1 MiB.
printf '::result "'
head -c 1100000 /dev/zero | tr '\0' a
printf '"\n'
