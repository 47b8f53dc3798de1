"""Cuts and joins: halves, clauses, and translations of pieces put back together
(nmt/text/pieces.py)."""



from nmt.text.pieces import Cut, Translation, halve, join_parts, split_clauses


def test_safety_net_pieces():
    assert halve("eins zwei drei vier") == [("eins zwei", " "), ("drei vier", "")]
    assert halve("x" * 10) == [("x" * 5, ""), ("x" * 5, "")]
    assert split_clauses("a b, c d; e f g h i") == [("a b, c d", "; "), ("e f g h i", "")]
    assert split_clauses("no clause here") is None
    parts = [Translation("A dog runs.", -1.0, []), Translation("a cat sits.", -2.0, [])]
    joined = join_parts(parts, [("Ein Hund rennt", ", "), ("eine Katze sitzt.", "")])
    assert joined.text == "A dog runs, a cat sits." and joined.score == -3.0


def test_a_cut_text_is_put_back_from_its_leaves_in_order():
    inner = Cut("b, c", pieces=[("b", ", "), ("c", "")], parts=[Cut("b"), Cut("c")])
    cut = Cut("a; b, c", pieces=[("a", "; "), ("b, c", "")], parts=[Cut("a"), inner])
    assert [leaf.text for leaf in cut.leaves()] == ["a", "b", "c"]
    assert [leaf.text for leaf in Cut("x").leaves()] == ["x"]
    done = iter([Translation(t, -1.0, []) for t in ("A.", "B.", "C.")])
    assert cut.assemble(done, "en").text == "A; b, c." and next(done, None) is None


def test_clause_split_prefers_a_coordinating_conjunction_and_translates_it():
    text = "Ein Hund, eine Katze und ein Pferd stehen im Hof, und ein Mann sitzt."
    # the list comma is nearer the middle, the one before "und" joins two clauses
    assert split_clauses(text, "de", "en") == [
        ("Ein Hund, eine Katze und ein Pferd stehen im Hof", ", and "), ("ein Mann sitzt.", "")]
    assert split_clauses(text, "en", "fr")[0][1] == ", "  # "und" is no English conjunction
    assert split_clauses("Ein Hund rennt, oder er sitzt.", "de", "cs") == [
        ("Ein Hund rennt", ", nebo "), ("er sitzt.", "")]
    assert split_clauses("Sie sagt, und", "de", "en") == [("Sie sagt", ", "), ("und", "")]


def test_a_clause_inside_a_sentence_loses_the_capital_of_a_sentence_start():
    def join(texts, sources, lang):
        parts = [Translation(t, -1.0, [(t, -1.5)]) for t in texts]
        return join_parts(parts, [(s, ", and " if i == 0 else "") for i, s in enumerate(sources)],
                          lang)

    joined = join(["A dog runs.", "A cat sits."], ["Ein Hund rennt", "eine Katze sitzt."], "en")
    assert joined.text == "A dog runs, and a cat sits."
    assert joined.alternatives[0][0] == "A dog runs, and a cat sits."
    # a name (its source starts with a capital) and an acronym keep theirs
    assert join(["A dog runs.", "Anna sits."], ["Ein Hund rennt", "Anna sitzt."],
                "en").text == "A dog runs, and Anna sits."
    assert join(["A dog runs.", "USA."], ["Ein Hund rennt", "usa."], "en").text.endswith("USA.")
    # in German only a function word is lowered: nouns keep their capital
    assert join(["Ein Hund.", "Eine Katze sitzt."], ["A dog", "a cat sits."],
                "de").text == "Ein Hund, and eine Katze sitzt."
    assert join(["Ein Hund.", "Katzen sitzen."], ["A dog", "cats sit."],
                "de").text == "Ein Hund, and Katzen sitzen."
