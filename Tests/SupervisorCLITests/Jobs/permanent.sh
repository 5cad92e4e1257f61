echo "::fail permanent Item not found"
exit 1
