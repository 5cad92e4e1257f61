echo "attempt $SUPERVISOR_ATTEMPT failing"
exit 3
