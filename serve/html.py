"""``"format": "html"``: each text parsed, its runs of text translated with word links, and its
tags put back around the linked words (nmt/text/markup.py)."""

from __future__ import annotations

import asyncio

from nmt.text.markup import MarkupError, read


async def translate_html(texts: list[str], translate, error) -> list[tuple]:
    """Each HTML text translated, as the route's answers (html, alternatives, attention, links);
    ``translate(sources)`` is the route's own translation of plain texts with word links;
    ``error(message)`` the exception a text that cannot be read raises."""
    try:
        pages = await asyncio.to_thread(lambda: [read(text) for text in texts])
    except MarkupError as problem:
        raise error(str(problem)) from None
    sources = [source for page in pages for source in page.sources]
    done = await translate(sources) if sources else []
    pairs = [(answer[0], [tuple(link) for link in answer[3]]) for answer in done]

    def finish() -> list[str]:
        out, at = [], 0
        for page in pages:
            out.append(page.finish(pairs[at:at + len(page.runs)]))
            at += len(page.runs)
        return out

    return [(html, [], [], []) for html in await asyncio.to_thread(finish)]
