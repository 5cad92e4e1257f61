# Its first step opens the FIFO the payload names, which is what the benchmark times.
exec 3>"$(tr -d '"' < "$SUPERVISOR_PAYLOAD_FILE")"
