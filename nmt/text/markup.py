"""HTML in, HTML out: the text between tags translated in context, every tag put back around the
words aligned to what it wrapped.

The input is read as a browser reads it (html5lib, the WHATWG parsing algorithm, through
BeautifulSoup): unclosed and misnested tags are closed where a browser closes them, stray
closing tags dropped. Each block (a paragraph, a list item, a cell: any element that is not
inline) holds *runs*: its inline content between block children. A run is translated as one
text, its words linked to the translation's words (nmt/decode/alignment.py); then

- an inline element (``<b>``, ``<a href>``, nested ones) wraps the translation words linked to
  the words it wrapped, from the first to the last of them; it stays inside its parent and
  after the sibling before it, and wraps nothing (but is kept) where no word is linked;
- a void element (``<br>``, ``<img>``), a comment, a ``<script>`` or ``<style>`` block goes after
  the translation of the word before it;
- attributes, comments and ``<script>``/``<style>``/``<code>``/``<pre>`` contents are untouched.

So every tag of the parsed input comes out once, closed, and nested as it was.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

INLINE = frozenset({"a", "abbr", "b", "bdi", "bdo", "big", "cite", "dfn", "em", "font", "i",
                    "ins", "del", "kbd", "label", "mark", "q", "s", "samp", "small", "span",
                    "strike", "strong", "sub", "sup", "time", "tt", "u", "var"})
POINTS = frozenset({"br", "img", "wbr", "input", "script", "style", "code", "svg", "math",
                    "noscript", "template", "button", "select", "textarea", "iframe", "object"})
UNTRANSLATED = frozenset({"script", "style", "code", "pre", "svg", "math", "noscript", "template",
                          "textarea"})
WORD = re.compile(r"\S+")


class MarkupError(ValueError):
    """HTML that cannot be read."""


@dataclass
class Mark:
    """An inline element of a run: the characters of the run's text it wraps, its own inline
    children, and the points (void elements, comments) at a character position within it."""

    tag: object  # the original bs4 Tag (None for the run itself)
    start: int
    end: int = 0
    children: list[Mark] = field(default_factory=list)
    points: list[tuple[int, object]] = field(default_factory=list)
    span: tuple[int, int] | None = None  # translation words [a, b) it wraps, once placed


@dataclass
class Run:
    parent: object  # the block element
    nodes: list  # its consecutive children that make the run
    text: str  # the run's text as the characters of its text nodes
    root: Mark

    @property
    def words(self) -> list[tuple[int, int]]:
        return [m.span() for m in WORD.finditer(self.text)]

    @property
    def source(self) -> str:
        """What is translated: the run's words, one space apart."""
        return " ".join(self.text[a:b] for a, b in self.words)


def parse(html: str):
    """A BeautifulSoup tree of ``html`` and whether it is a whole document (else a fragment,
    parsed as the content of <body> so that nothing moves to <head>)."""
    from bs4 import BeautifulSoup

    document = bool(re.match(r"\s*(<!--.*?-->\s*)*<(!doctype|html|head)\b", html, re.I | re.S))
    try:
        soup = BeautifulSoup(html if document else "<body>" + html, "html5lib")
    except Exception as error:  # html5lib reads any string; this is a safety net
        raise MarkupError(f"cannot read the HTML: {error}") from None
    return soup, document


def serialize(soup, document: bool) -> str:
    return soup.decode() if document else soup.body.decode_contents()


def runs(soup) -> list[Run]:
    """Every run with words, in document order."""
    from bs4 import Tag

    found: list[Run] = []

    def block(element) -> None:
        if element.name in UNTRANSLATED:
            return
        current: list = []
        for child in list(element.children):
            if isinstance(child, Tag) and child.name not in INLINE and child.name not in POINTS:
                close(element, current)
                current = []
                block(child)
            else:
                current.append(child)
        close(element, current)

    def close(element, nodes: list) -> None:
        if nodes:
            run = make_run(element, nodes)
            if run.words:
                found.append(run)

    block(soup)
    return found


def make_run(parent, nodes: list) -> Run:
    """The text of ``nodes`` and the marks and points over it."""
    from bs4 import Comment, NavigableString, Tag

    parts: list[str] = []
    root = Mark(None, 0)

    def at() -> int:
        return sum(len(p) for p in parts)

    def walk(node, mark: Mark) -> None:
        if isinstance(node, Tag) and node.name in INLINE:
            child = Mark(node, at())
            for sub in list(node.children):
                walk(sub, child)
            child.end = at()
            mark.children.append(child)
        elif isinstance(node, NavigableString) and not isinstance(node, Comment) \
                and type(node) is NavigableString:
            parts.append(str(node))
        else:  # a void or untranslated element, a comment, a doctype: kept whole
            if isinstance(node, Tag) and node.name in ("br", "wbr"):
                parts.append(" ")  # a line break separates words
            mark.points.append((at(), node))

    for node in nodes:
        walk(node, root)
    root.end = at()
    return Run(parent, nodes, "".join(parts), root)


# ----------------------------------------------------------------------------- placing


def source_words(run: Run, start: int, end: int) -> set[int]:
    """Words of the run with a character in [start, end)."""
    return {i for i, (a, b) in enumerate(run.words) if a < end and b > start}


def place(run: Run, translation: str, links) -> list:
    """The run's nodes for ``translation`` (linked to ``run.source`` word by word): new nodes
    to put where the run's were."""
    from bs4 import NavigableString

    target = translation.split()
    words = run.words
    lead = run.text[:words[0][0]] if words else ""
    trail = run.text[words[-1][1]:] if words else ""
    to_target: dict[int, list[int]] = {}
    for i, j in links:
        if 0 <= j < len(target):
            to_target.setdefault(i, []).append(j)
    run.root.span = (0, len(target))
    spans(run, run.root, to_target)
    out = [NavigableString(lead)] if lead else []
    out += build(run, run.root, target, to_target)
    if trail:
        out.append(NavigableString(trail))
    return out


def spans(run: Run, mark: Mark, to_target: dict[int, list[int]]) -> None:
    """Each child's translation span: its linked words, within its parent, after its siblings."""
    low, high = mark.span
    placed: list[Mark] = []
    for child in mark.children:
        linked = [j for i in source_words(run, child.start, child.end) for j in to_target.get(i, [])]
        inside = [j for j in linked if low <= j < high]
        child.span = (min(inside), max(inside) + 1) if inside else None
    for child in sorted((c for c in mark.children if c.span), key=lambda c: c.span[0]):
        a, b = child.span
        if placed and a < placed[-1].span[1]:
            a = placed[-1].span[1]
        child.span = (a, b) if a < b else None
        if child.span:
            placed.append(child)
    for child in mark.children:
        if child.span is None:
            child.span = (gap(run, child.start, mark, to_target),) * 2
        spans(run, child, to_target)


def gap(run: Run, position: int, mark: Mark, to_target: dict[int, list[int]]) -> int:
    """Where something at character ``position`` goes: after the translation of the word before
    it, within ``mark``'s span and not inside a placed child's."""
    low, high = mark.span
    before = [i for i, (a, b) in enumerate(run.words) if b <= position]
    linked = [j for i in before for j in to_target.get(i, []) if low <= j < high]
    at = max(linked) + 1 if linked else low
    for child in mark.children:
        if child.span and child.span[0] < at < child.span[1]:
            at = child.span[1]
    return min(max(at, low), high)


def build(run: Run, mark: Mark, target: list[str], to_target) -> list:
    """Nodes for ``mark``'s span: its words, its children (new tags with the originals'
    names and attributes), and its points."""
    from bs4 import NavigableString

    low, high = mark.span
    starts: dict[int, list] = {}
    for child in mark.children:
        starts.setdefault(child.span[0], []).append(("mark", child))
    for position, node in mark.points:
        starts.setdefault(gap(run, position, mark, to_target), []).append(("point", node))
    out: list = []
    j = low
    while True:
        for kind, item in [x for x in starts.pop(j, []) if x[0] == "point" or x[1].span[0] == x[1].span[1]]:
            out.append(item.extract() if kind == "point" else shallow_copy(item.tag))
        if j >= high:
            break
        child = next((c for c in mark.children if c.span[0] == j and c.span[1] > j), None)
        if j > low:
            out.append(NavigableString(" "))
        if child is not None:
            tag = shallow_copy(child.tag)
            for node in build(run, child, target, to_target):
                tag.append(node)
            out += punctuation_outside(run, child, tag)
            j = child.span[1]
        else:
            out.append(NavigableString(target[j]))
            j += 1
    return out


PUNCTUATION = re.compile(r"^([(\[«„“\"'¿¡]*)(.*?)([.,;:!?)\]»“”\"'…]*)$", re.S)


def punctuation_outside(run: Run, mark: Mark, tag) -> list:
    """[before, tag, after]: punctuation glued to a word the tag cut in the source ("<a>weg</a>."
    is one word "weg.") moved out of the tag again, where the translation's word has it too."""
    from bs4 import NavigableString

    def texts():
        return [node for node in tag.descendants if type(node) is NavigableString and node.strip()]

    before = after = ""
    if mark.end < len(run.text) and not run.text[mark.end].isspace() and texts():
        last = texts()[-1]
        head, core, after = PUNCTUATION.match(str(last)).groups()
        if head or core:  # a word is left inside
            last.replace_with(NavigableString(head + core))
        else:
            after = ""
    if mark.start > 0 and not run.text[mark.start - 1].isspace() and texts():
        first = texts()[0]
        before, core, tail = PUNCTUATION.match(str(first)).groups()
        if core or tail:
            first.replace_with(NavigableString(core + tail))
        else:
            before = ""
    return [node for node in (NavigableString(before) if before else None, tag,
                              NavigableString(after) if after else None) if node is not None]


def shallow_copy(tag):
    """A new, empty tag with ``tag``'s name and attributes."""
    copy = tag.__copy__()
    copy.clear()
    return copy


@dataclass
class Page:
    """Parsed HTML and its runs, waiting for their translations."""

    soup: object
    document: bool
    runs: list[Run]

    @property
    def sources(self) -> list[str]:
        return [run.source for run in self.runs]

    def finish(self, done: list[tuple[str, list]]) -> str:
        """The HTML with each run replaced by its (translation, links)."""
        for run, (translation, links) in zip(self.runs, done, strict=True):
            replace(run, translation, links)
        return serialize(self.soup, self.document)


def read(html: str) -> Page:
    soup, document = parse(html)
    return Page(soup, document, runs(soup))


def translate_html(html: str, translate) -> str:
    """``html`` with its text translated: ``translate(texts)`` gives (translation, links) for
    each run's ``source``."""
    page = read(html)
    return page.finish(translate(page.sources) if page.runs else [])


def replace(run: Run, translation: str, links) -> None:
    """The run's original nodes swapped for its translation's (points moved, not copied)."""
    from bs4 import NavigableString

    anchor = NavigableString("")
    run.nodes[0].insert_before(anchor)  # before ``place`` moves the points out
    nodes = place(run, translation, links)
    kept = {id(node) for node in nodes}
    for node in run.nodes:
        if node.parent is not None and id(node) not in kept:
            node.extract()
    for node in nodes:
        anchor.insert_before(node)
    anchor.extract()
