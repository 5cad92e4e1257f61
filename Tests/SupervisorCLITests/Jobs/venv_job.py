# Run by a virtualenv's interpreter: reports the prefix Python found (the virtualenv's
# only if it could read its pyvenv.cfg) and that the standard library loads.
import json
import sys

print("::result " + json.dumps({"prefix": sys.prefix, "json": json.dumps([1])}))
