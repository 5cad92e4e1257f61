"""Visits each URL, reports `::progress i/n` per page, and returns what it found as JSON.

Payload: {"urls": ["https://…", …], "selector": "h1"}
Result:  {"pages": [{"url": "…", "title": "…", "count": N, "texts": ["…", …]}, …]}
         `count` is how many elements match `selector`; `texts` holds the first 20 of them.
"""

import browserjob

value = browserjob.payload()
urls = value.get("urls")
if not isinstance(urls, list) or not urls:
    browserjob.fail("permanent", 'the payload needs "urls": a list of http:// or https:// URLs')
selector = value.get("selector", "h1")
if not isinstance(selector, str) or not selector:
    browserjob.fail("permanent", 'the payload\'s "selector" must be a CSS selector')
pages = []
with browserjob.page() as page:
    for index, url in enumerate(urls):
        url = browserjob.require_url({"url": url})
        page.goto(url, wait_until="load")
        found = page.locator(selector)
        texts = [text.strip() for text in found.all_inner_texts()[:20]]
        pages.append({"url": url, "title": page.title(), "count": found.count(), "texts": texts})
        browserjob.progress(index + 1, len(urls), page.title())
browserjob.result({"pages": pages})
