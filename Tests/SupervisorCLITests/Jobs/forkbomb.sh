# Forks without end in the background; the type's pids_max refuses the forks, and its
# timeout ends the job. The main process becomes sleep (no fork of its own to be refused).
bomb() { bomb & bomb & wait; }
bomb &
exec sleep 30
