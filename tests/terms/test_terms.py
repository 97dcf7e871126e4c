from codesift.terms import query_terms, stem, terms


def test_identifiers_split_and_kept_whole():
    t = terms("parseHTTPResponse read_lines XMLHttpRequest")
    for expected in ("parse", "http", "response", "parsehttpresponse", "read", "line", "readline",
                     "xml", "request", "xmlhttprequest"):
        assert expected in t


def test_stop_words_dropped_but_not_inside_identifiers_whole():
    t = terms("Return the number of items in the queue is_empty")
    assert "the" not in t and "of" not in t and "in" not in t
    assert {"return", "number", "item", "queue", "empty", "isempty"} <= set(t)


def test_query_and_document_agree():
    assert set(query_terms("getUserName")) <= set(terms("def get_user_name(self): pass"))
    assert "readline" in terms("def read_lines(self)") and "readline" in terms("f.readlines()")


def test_stemming_is_light():
    assert [stem(w) for w in ("returns", "classes", "parsing", "parsed", "status", "process", "is")] == \
        ["return", "class", "pars", "pars", "status", "process", "is"]


def test_unicode_identifiers():
    t = terms("größe_berechnen naïve")
    assert "größe" in t and "berechnen" in t and "naïve" in t and "größeberechnen" in t


def test_query_terms_unique_in_order():
    assert query_terms("read file, read FILE") == ["read", "file"]


def test_spaced_identifiers():
    from codesift.terms import spaced_identifiers

    assert spaced_identifiers("def get_user_name(self): return self.fetchHTTP(x)") == \
        "def get user name(self): return self.fetch HTTP(x)"
    assert spaced_identifiers("plain words, __init__ and 日本") == "plain words, init and 日本"


def test_the_dictionary_is_every_alphabetic_token_of_the_word_list():
    """Documents were indexed with these words: the fast reading of the list must find the same set."""
    from pathlib import Path

    import codesift.terms as terms_module
    from codesift.terms import dictionary

    text = (Path(terms_module.__file__).parent / "words.txt").read_text(encoding="utf-8")
    assert dictionary() == frozenset(w for w in text.split() if not w.startswith("#") and w.isalpha())
    assert {"atom", "name", "default"} <= dictionary() and "#" not in dictionary()


def test_cached_spellings_and_terms_match_the_direct_ones():
    """spaced_identifiers and terms keep what they worked out per identifier: the same text gives
    the same result the first time and later, and as spelled out one identifier at a time."""
    import re

    from codesift.terms import MAX_TERM_LEN, STOP_WORDS, identifier_terms, spaced_identifiers, terms_text
    from tests.embed.texts import parity_texts

    def spaced_direct(text: str) -> str:
        def one(m: re.Match) -> str:
            tok = m.group(0)
            if "_" in tok or re.search(r"(?<=[a-z0-9])(?=[A-Z])", tok):
                return re.sub(r"(?<=[a-z0-9])(?=[A-Z])|_+", " ", tok).strip() or tok
            return tok
        return re.sub(r"[A-Za-z_][A-Za-z0-9_]*", one, text)

    def terms_direct(text: str) -> str:
        out = []
        for tok in re.findall(r"[^\W\d][\w]*|\d+", text):
            if tok.isdigit():
                out += [tok] if len(tok) <= 8 else []
            elif tok.lower() not in STOP_WORDS:
                out += identifier_terms(tok)
        assert all(t and " " not in t and len(t) <= MAX_TERM_LEN for t in out)
        return " ".join(out)

    texts = parity_texts() + ["9abc_def x9Abc __ _a_ a__b é_x getHTTP2Response 123456789 ²³"]
    for _ in range(2):
        for text in texts:
            assert spaced_identifiers(text) == spaced_direct(text)
            assert terms_text(text) == terms_direct(text)


def test_query_words_found_in_the_word_list_text_split_as_with_its_set():
    """A fresh process answers 'is this a listed word?' from words.txt's text until the set is
    built: the same terms either way, and a query of listed words never builds the set."""
    import subprocess
    import sys

    words = ["parse", "patterns", "ignore", "atomname", "setdefault", "hasattr", "isfile", "getusername",
             "zzzzqqqq", "dictionary", "words", "aaa", "zurich", "httpconnection", "readlines"]
    code = ("import sys; from codesift import terms\n"
            f"words = {words!r}\n"
            "plain = terms.query_terms('parse the patterns of an ignore file')\n"
            "built_for_plain = len(terms._WORDS)\n"
            "before = [terms.segment(w) for w in words]\n"
            "terms.dictionary()\n"
            "after = [terms.segment(w) for w in words]\n"
            "print(built_for_plain, before == after, plain)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split(" ", 2)
    assert out[:2] == ["0", "True"], out


def test_the_word_list_is_comments_then_one_word_a_line():
    """What `terms._listed` relies on to answer from the text as the set would."""
    from pathlib import Path

    import codesift.terms as terms_module

    lines = (Path(terms_module.__file__).parent / "words.txt").read_text(encoding="utf-8").split("\n")
    comments = 0
    while lines[comments].startswith("#"):
        comments += 1
    assert 0 < comments <= 8
    assert all(line.isalpha() for line in lines[comments:] if line) and "" not in lines[comments:-1]
