# Reports what confines it, as its own /proc/self/status says, whether mkdir works, and
# whether it can read the supervisor's environment (its nearest ancestor named supervisor).
field() { awk -v name="$1:" '$1 == name { print $2 }' /proc/self/status; }
if mkdir "$TMPDIR/made" 2>/dev/null; then made=true; else made=false; fi
ancestor=$PPID
while [ "$ancestor" -gt 1 ] && [ "$(cat /proc/$ancestor/comm)" != supervisor ]; do
    ancestor=$(awk '$1 == "PPid:" { print $2 }' /proc/$ancestor/status)
done
if [ "$ancestor" -gt 1 ] && cat /proc/$ancestor/environ > /dev/null 2>&1; then readable=true; else readable=false; fi
echo "::result {\"seccomp\": $(field Seccomp), \"noNewPrivs\": $(field NoNewPrivs), \"capEff\": \"$(field CapEff)\", \"mkdir\": $made, \"supervisorFound\": $([ "$ancestor" -gt 1 ] && echo true || echo false), \"supervisorEnvironReadable\": $readable}"
