"""Screenshot of a URL, kept as the artifact screenshot.png.

Payload: {"url": "https://…", "fullPage": false, "width": 1280, "height": 800}
Result:  {"title": "…", "artifact": "screenshot.png", "bytes": N}
"""

import os

import browserjob

value = browserjob.payload()
url = browserjob.require_url(value)
with browserjob.page() as page:
    page.set_viewport_size({"width": int(value.get("width", 1280)), "height": int(value.get("height", 800))})
    browserjob.progress(10, message="loading")
    page.goto(url, wait_until="load")
    browserjob.progress(70, message="capturing")
    path = browserjob.artifact("screenshot.png")
    page.screenshot(path=path, full_page=bool(value.get("fullPage", False)))
    browserjob.result({"title": page.title(), "artifact": "screenshot.png", "bytes": os.path.getsize(path)})
