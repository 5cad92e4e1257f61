"""A URL printed to PDF, kept as the artifact page.pdf.

Payload: {"url": "https://…", "format": "A4", "landscape": false}
Result:  {"title": "…", "artifact": "page.pdf", "bytes": N}
"""

import os

import browserjob

value = browserjob.payload()
url = browserjob.require_url(value)
with browserjob.page() as page:
    browserjob.progress(10, message="loading")
    page.goto(url, wait_until="load")
    browserjob.progress(60, message="printing")
    path = browserjob.artifact("page.pdf")
    page.pdf(path=path, format=str(value.get("format", "A4")), landscape=bool(value.get("landscape", False)))
    browserjob.result({"title": page.title(), "artifact": "page.pdf", "bytes": os.path.getsize(path)})
