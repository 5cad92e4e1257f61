# Starts Chromium itself on the attempt's user-data dir and port, as the setups our users
# come from do, waits until it answers, and then hangs.
chromium --headless=new --no-sandbox --disable-dev-shm-usage --user-data-dir="$SUPERVISOR_USER_DATA_DIR" \
    --remote-debugging-port="$SUPERVISOR_DEBUG_PORT" about:blank 2>"$SUPERVISOR_WORK_DIR/chromium.log" &
until grep -q 'DevTools listening' "$SUPERVISOR_WORK_DIR/chromium.log" 2>/dev/null; do sleep 0.05; done
echo "::progress 50 browser up"
sleep 600
