#!/bin/sh
# Greets the payload's "name": reads the payload JSON on stdin, reports progress, returns a result.
payload=$(cat)
name=$(printf '%s' "$payload" | sed -n 's/.*"name" *: *"\([^"]*\)".*/\1/p')
echo "::progress 50 Greeting"
echo "::result {\"greeting\": \"Hello, ${name:-world}!\"}"
