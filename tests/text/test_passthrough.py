"""Pass-through spans: links, numbers, emoji and acronyms swapped for placeholders and put back;
names copied with a letter wrong put right (nmt/text/passthrough.py)."""


import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nmt.text.passthrough import _PATTERN, PLACEHOLDERS, _span_matches, find_spans, protect, restore


@pytest.mark.parametrize("text, spans", [
    ("Ein Hund rennt.", ()),
    ("Der Preis beträgt 25,50 € für 3 Personen am 12.05.2023.", ("25,50 €", "3", "12.05.2023")),
    ("Besuchen Sie https://example.com/a?b=1, oder schreiben Sie an max@example.org!",
     ("https://example.com/a?b=1", "max@example.org")),
    ("Code A4-17 (Raum 5) 🐕‍🦺 und 👍🏽", ("A4-17", "5", "🐕‍🦺", "👍🏽")),
    ("Preis: € 20 (oder $5)", ("€ 20", "$5")),
])
def test_placeholders_round_trip(text, spans):
    protected = protect(text)
    assert protected.spans == spans
    assert not any(span in protected.text for span in spans)
    assert sum(protected.text.count(p) for p in PLACEHOLDERS) == len(spans)
    assert restore(protected.text, protected.spans) == text


def test_restore_never_loses_a_span():
    spans = ("https://example.com", "42")
    assert restore("Visit \ue002 now.", spans) == "Visit 42 now https://example.com."
    assert restore("An \ue007 invented placeholder.", ()) == "An invented placeholder."
    assert restore("\ue001 und \ue001.", ("3",)) == "3 und ."  # a repeat is not a second copy
    assert len(find_spans("a " * 5 + "1 2 3 4 5 6 7 8 9 10 11")) == 11
    assert len(protect("1 2 3 4 5 6 7 8 9 10 11").spans) == len(PLACEHOLDERS)  # the rest stay text


def test_acronyms_pass_through_numbered_in_order_with_the_spans_already_there():
    from nmt.text.passthrough import protect_acronyms

    protected = protect("Die EU zahlt 25,50 € an das FBI-Büro der NATO, sagt OU.")
    assert protected.spans == ("25,50 €",)
    unknown = {"EU", "FBI", "NATO"}.__contains__  # "OU": an acronym the vocabulary knows
    out = protect_acronyms(protected, unknown)
    assert out.spans == ("EU", "25,50 €", "FBI", "NATO")
    p1, p2, p3, p4 = PLACEHOLDERS[:4]
    assert out.text == f"Die {p1} zahlt {p2} an das {p3}-Büro der {p4}, sagt OU."
    assert restore(f"The {p1} pays {p2} to the {p3} office of {p4}, says OU.", out.spans) == \
        "The EU pays 25,50 € to the FBI office of NATO, says OU."
    # never more than nine spans: the ones protect made come first, later acronyms stay text
    eight = protect(" ".join(str(n) for n in range(8)) + " EU FBI NATO")
    full = protect_acronyms(eight, unknown)
    assert full.spans == tuple(str(n) for n in range(8)) + ("EU",)
    assert full.text.endswith(f"{PLACEHOLDERS[8]} FBI NATO")


def test_names_copied_with_a_letter_wrong_are_put_right():
    from nmt.text.passthrough import repair_copies

    common = {"A", "Two", "An", "American", "Dalmatian"}.__contains__
    assert repair_copies("Anna Schmidt: Ein Hund rennt.", "Anam Schidtid: A dog runs.",
                         common) == "Anna Schmidt: A dog runs."
    assert repair_copies("Zwei Männer (Sophie).", "Two men (Sope (Sope).", common) == \
        "Two men (Sophie (Sope)."  # one word replaced once, the first
    # A common word, a source word and anything too different stay as they are.
    for source, output in (("Ein Amerikaner mit einem Dalmatiner.", "An American with a Dalmatian."),
                           ("Oskar und Otto.", "Oskar and Otto."),
                           ("Ein Hund namens Bello.", "A dog named Rex.")):
        assert repair_copies(source, output, common) == output


@settings(max_examples=3000, deadline=None)
@given(st.text(alphabet="ahtpsw:/.@-+_1 <>\"xÄ€😀\t", max_size=60))
def test_the_linear_span_scan_finds_what_the_pattern_defines(text):
    assert _span_matches(text) == [m.span() for m in _PATTERN.finditer(text)]


@pytest.mark.parametrize("text", [
    "https://www.example.org/a?b=1 and www.x.de", "mail a@b.de, c.d+e@f-g.co.uk now",
    "a@b.c+d@e.f", 'http://a.de"x1', "www. x", "1a@b.de2", "E-Mail: anna.schmidt@firma.de.",
])
def test_the_linear_span_scan_on_links_addresses_and_numbers(text):
    assert _span_matches(text) == [m.span() for m in _PATTERN.finditer(text)]
