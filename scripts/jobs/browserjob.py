"""What the example browser jobs share: the payload, the attempt's browser, the markers.

A job of a `browser = "chromium"` type finds its browser at SUPERVISOR_CDP_URL: the
supervisor started it for this attempt, with its own user-data directory and port, and
ends it with the attempt. Markers go to stdout, one per line (SPEC section 6); everything
else printed is kept in the attempt's log.
"""

import json
import os
import sys
from contextlib import contextmanager

from playwright.sync_api import Error, sync_playwright


def payload():
    """The job's payload: the same JSON is on stdin and in SUPERVISOR_PAYLOAD_FILE."""
    with open(os.environ["SUPERVISOR_PAYLOAD_FILE"], encoding="utf-8") as file:
        value = json.load(file)
    return value if isinstance(value, dict) else {}


def require_url(value, key="url"):
    """A payload's http(s) URL, or a permanent failure: retrying a bad payload never helps."""
    url = value.get(key)
    if not isinstance(url, str) or not url.startswith(("http://", "https://")):
        fail("permanent", f'the payload needs "{key}": an http:// or https:// URL')
    return url


def progress(current, total=None, message=""):
    amount = f"{current}/{total}" if total is not None else f"{current}"
    print(f"::progress {amount} {message}".rstrip(), flush=True)


def result(value):
    print("::result " + json.dumps(value, separators=(",", ":")), flush=True)


def fail(kind, message):
    """Ends the job: `permanent` is never retried, `transient` is while attempts remain."""
    print(f"::fail {kind} {message}", flush=True)
    sys.exit(1)


def artifact(name):
    """Where a file kept after the job goes: listed in the job and downloadable."""
    return os.path.join(os.environ["SUPERVISOR_ARTIFACTS_DIR"], name)


@contextmanager
def page(timeout_ms=30_000):
    """A fresh page in the attempt's browser. A page that fails to load is a transient
    failure: the site may be back on the next attempt."""
    with sync_playwright() as playwright:
        browser = playwright.chromium.connect_over_cdp(os.environ["SUPERVISOR_CDP_URL"])
        context = browser.contexts[0] if browser.contexts else browser.new_context()
        tab = context.new_page()
        tab.set_default_timeout(timeout_ms)
        try:
            yield tab
        except Error as error:
            fail("transient", str(error).splitlines()[0])
