# Records the browser it was given, loads the payload's page in it, reports ready, and
# holds until the gate exists.
import json
import os
import time

from playwright.sync_api import sync_playwright

with open(os.environ["SUPERVISOR_PAYLOAD_FILE"], encoding="utf-8") as file:
    payload = json.load(file)
with sync_playwright() as playwright:
    browser = playwright.chromium.connect_over_cdp(os.environ["SUPERVISOR_CDP_URL"])
    page = browser.contexts[0].new_page()
    page.goto(payload["url"])
    seen = {
        "cdp": os.environ["SUPERVISOR_CDP_URL"],
        "port": os.environ["SUPERVISOR_DEBUG_PORT"],
        "userData": os.environ["SUPERVISOR_USER_DATA_DIR"],
        "title": page.title(),
    }
    with open(os.path.join(os.environ["SUPERVISOR_ARTIFACTS_DIR"], "seen.json"), "w", encoding="utf-8") as file:
        json.dump(seen, file)
    print("::progress 50 ready", flush=True)
    while not os.path.exists(payload["gate"]):
        time.sleep(0.02)
    print("::result " + json.dumps(seen), flush=True)
