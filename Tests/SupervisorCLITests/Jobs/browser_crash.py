# Attempt 1 crashes its browser (DevTools' Browser.crash) and waits to be stopped;
# attempt 2 reports which browser it got.
import json
import os
import time

from playwright.sync_api import Error, sync_playwright

with sync_playwright() as playwright:
    browser = playwright.chromium.connect_over_cdp(os.environ["SUPERVISOR_CDP_URL"])
    if os.environ["SUPERVISOR_ATTEMPT"] == "1":
        print("::progress 50 crashing the browser", flush=True)
        try:
            browser.new_browser_cdp_session().send("Browser.crash")
        except Error:
            pass
        time.sleep(600)
    print("::result " + json.dumps({"attempt": int(os.environ["SUPERVISOR_ATTEMPT"]), "version": browser.version}), flush=True)
