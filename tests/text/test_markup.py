"""HTML translated with its tags kept: every tag of the parsed input comes out once, closed and
nested, around the words linked to what it wrapped; attributes, entities, comments and scripts
untouched; broken HTML read as a browser reads it (nmt/text/markup.py)."""

from __future__ import annotations

from collections import Counter

from bs4 import BeautifulSoup, Comment

from nmt.text.markup import read, translate_html


def identity(texts):
    return [(t, [(i, i) for i in range(len(t.split()))]) for t in texts]


def reverse(texts):
    """Words reversed and upper-cased, each linked to where it went."""
    out = []
    for text in texts:
        words = text.split()
        n = len(words)
        out.append((" ".join(reversed(words)).upper(), [(i, n - 1 - i) for i in range(n)]))
    return out


def tags(html: str) -> Counter:
    soup = BeautifulSoup("<body>" + html, "html5lib")
    return Counter(tag.name for tag in soup.body.find_all(True))


def comments(html: str) -> list[str]:
    soup = BeautifulSoup("<body>" + html, "html5lib")
    return [str(c) for c in soup.body.find_all(string=lambda s: isinstance(s, Comment))]


HARD = ('<p>Hallo <b>schöne <i>Welt</i></b> &amp; <a href="/x?a=1>2" title="a &quot;b&quot;">'
        'hier</a><br>zweite Zeile <!-- bleibt --> <img src="a.png" alt="x"> Ende.</p>'
        '<script>if (a < b) { x = "<b>"; }</script><ul><li>Eins <em>zwei <u>drei</u></em></li></ul>')


def test_every_tag_comes_back_once_with_its_attributes_and_the_script_untouched():
    for translate in (identity, reverse):
        out = translate_html(HARD, translate)
        assert tags(out) == tags(HARD)
        assert comments(out) == [" bleibt "]
        soup = BeautifulSoup("<body>" + out, "html5lib")
        assert soup.a["href"] == "/x?a=1>2" and soup.a["title"] == 'a "b"'
        assert soup.img["src"] == "a.png" and soup.script.string == 'if (a < b) { x = "<b>"; }'
        assert "&amp;" in out  # the entity's character is escaped again, not lost or doubled


def test_identity_translation_gives_the_same_html_back():
    html = '<p>Ein <b>großer <i>Hund</i></b> rennt <a href="x">weg</a>.</p>'
    assert translate_html(html, identity) == html


def test_tags_follow_their_words_when_the_order_changes():
    out = translate_html("<p>eins <b>zwei</b> drei <i>vier <u>fünf</u></i></p>", reverse)
    assert out == "<p><i><u>FÜNF</u> VIER</i> DREI <b>ZWEI</b> EINS</p>"


def test_nested_tags_stay_nested_when_links_cross():
    # "a" (bold) links to the last word, "b" (italic inside bold) to the first: the italic
    # cannot leave its parent, so it shrinks into it instead of breaking the nesting
    crossed = [("X Y Z", [(0, 2), (1, 0), (2, 1)])]
    out = translate_html("<p><b>a <i>b</i></b> c</p>", lambda texts: crossed)
    soup = BeautifulSoup(out, "html5lib")
    assert soup.b.i is not None and tags(out) == Counter({"p": 1, "b": 1, "i": 1})


def test_unclosed_and_stray_tags_are_read_as_a_browser_reads_them():
    out = translate_html("<p>eins <b>zwei <i>drei</b> vier</i></div> fünf", identity)
    # html5lib closes <i> inside <b> and reopens it after, drops the stray </div>
    assert out == "<p>eins <b>zwei <i>drei</i></b> <i>vier</i> fünf</p>"


def test_a_tag_with_no_linked_word_is_kept_empty_rather_than_lost():
    out = translate_html("<p>nur <b>fett</b></p>", lambda texts: [("only bold", [])])
    assert tags(out) == Counter({"p": 1, "b": 1}) and "only bold" in out


def test_a_whole_document_keeps_its_head_and_translates_its_title():
    html = ("<!DOCTYPE html><html><head><title>Der Titel</title><style>p { color: red }</style>"
            "</head><body><p>Ein Hund</p></body></html>")
    out = translate_html(html, reverse)
    assert out.startswith("<!DOCTYPE html>") and "<title>TITEL DER</title>" in out
    assert "<style>p { color: red }</style>" in out and "<p>HUND EIN</p>" in out


def test_runs_are_the_inline_text_of_each_block():
    page = read("<div>Eins <b>zwei</b><p>drei</p>vier</div><pre>nicht <b>das</b></pre>")
    assert page.sources == ["Eins zwei", "drei", "vier"]
