#!/bin/sh
# Stands in for a browser that cannot start: it says why on stderr and exits.
echo "fake chromium: cannot open the profile in $*" >&2
exit 21
