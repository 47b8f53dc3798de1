"""Casing: sentences in capitals lowered and answered in capitals, runs and single words in
capitals truecased, lowercase input truecased (nmt/text/casing.py, nmt/text/pipeline.py)."""



from nmt.text.casing import is_shouting, shout


def test_truecasing_picks_the_likelier_spelling():
    from nmt.text.casing import truecase

    scores = {"hund": -12.0, "Hund": -7.0, "weiss": -15.0, "weiß": -8.0, "Weiss": -16.0,
              "Weiß": -14.0, "park": -9.0, "Park": -8.5, "ein": -5.0, "Ein": -4.0}
    assert truecase("ein hund im park, weiss.", lambda w: scores.get(w, -20.0)) == \
        "Ein Hund im park, weiß."  # "Park" is likelier, but not by the margin


def test_shouting_is_lowered_and_answered_in_capitals():
    assert is_shouting("EIN HUND RENNT DURCH DEN SCHNEE.")
    assert not is_shouting("Die USA und die EU.") and not is_shouting("ABC 123")
    # a name or noun typed as usual in a shouted sentence: still shouted (the model reads
    # capitals as single letters: val's upper-word set went from 0.85 to 43.55 BLEU with this)
    assert is_shouting("EIN HUND NAMENS Max RENNT DURCH DEN SCHNEE.")
    assert is_shouting("EINE FRAU MIT Sonnenbrille.") and not is_shouting("Eine Frau MIT BRILLE.")
    assert is_shouting("EIN MANN ARBEITET AN EINEM Hotdog-Stand.")  # one word, hyphens and all
    assert is_shouting("EIN Mann BOXT") and not is_shouting("Ein Auto von BMW.")
    assert shout("a dog at https://Example.com runs.", ("https://Example.com",)) == \
        "A DOG AT https://Example.com RUNS."


def test_runs_of_capitals_inside_a_sentence_are_truecased_acronyms_and_quotes_kept():
    from nmt.text.casing import lower_shouted_runs

    scores = {"Mann": -6.0, "mann": -12.0, "Fahrrad": -7.0, "fahrrad": -12.0, "Brille": -7.0}
    score = lambda w: scores.get(w, -20.0)  # noqa: E731
    assert lower_shouted_runs("Ein Mann FÄHRT FAHRRAD am Sonntag.", score) == \
        "Ein Mann fährt Fahrrad am Sonntag."
    assert lower_shouted_runs("EIN MANN fährt Fahrrad für 12,50 €.", score) == \
        "Ein Mann fährt Fahrrad für 12,50 €."  # a run that starts the sentence: its capital
    assert lower_shouted_runs("Eine Frau  MIT BRILLE.", score) == "Eine Frau  mit Brille."
    for kept in ("Die USA und die EU.", "Ein Auto von BMW.", "USA EU", "Ein BMW X5 ABC.",
                 "Ein Schild: „MAKE SOME NOISE“.", 'Ein Hemd mit "AIDS WALK" darauf.', ""):
        assert lower_shouted_runs(kept, score) == kept


def test_a_word_in_capitals_for_emphasis_is_truecased_an_acronym_kept():
    from nmt.text.casing import lower_shouted_runs

    scores = {"sehr": -6.0, "Sehr": -9.0, "hund": -12.0, "Hund": -6.0}
    score = lambda w: scores.get(w, -20.0)  # noqa: E731
    emphasis = {"SEHR", "HUND"}.__contains__
    assert lower_shouted_runs("Ein Hund rennt SEHR schnell.", score, emphasis) == \
        "Ein Hund rennt sehr schnell."
    assert lower_shouted_runs("HUND im Schnee, SEHR kalt, EU.", score, emphasis) == \
        "Hund im Schnee, sehr kalt, EU."
    for kept in ("Die USA und die EU.", "Ein LKW.", "", "Ein Hund.", "Ein Schild: „SEHR“."):
        assert lower_shouted_runs(kept, score, emphasis) == kept
