from codesift.search.fusion import ranks, reciprocal_rank_fusion, top_k
from codesift.search.searcher import path_matches


def test_ranks_descending_with_deterministic_ties():
    assert ranks({"a": 1.0, "b": 3.0, "c": 1.0}) == {"b": 1, "a": 2, "c": 3}


def test_rrf_rewards_agreement():
    lex = {"x": 10.0, "y": 9.0, "z": 1.0}
    sem = {"y": 0.9, "z": 0.8, "w": 0.7}
    fused = reciprocal_rank_fusion([lex, sem], k=60)
    assert top_k(fused, 1)[0][0] == "y"
    assert abs(fused["y"] - (1 / 62 + 1 / 61)) < 1e-12
    assert set(fused) == {"x", "y", "z", "w"}


def test_rrf_weights():
    fused = reciprocal_rank_fusion([{"a": 1.0}, {"b": 1.0}], weights=[2.0, 1.0])
    assert fused["a"] == 2 * fused["b"]


def test_path_matches():
    assert path_matches("src/pkg/mod.py", "*.py")
    assert path_matches("src/pkg/mod.py", "src/**/*.py")
    assert path_matches("src/pkg/mod.py", "src/pkg")
    assert path_matches("src/pkg/mod.py", "**/mod.py")
    assert not path_matches("src/pkg/mod.py", "docs/*")
    assert not path_matches("src/pkgx/mod.py", "src/pkg")


def test_normalized_fusion():
    from codesift.search.fusion import normalized_fusion

    fused = normalized_fusion([{"a": 10.0, "b": 5.0, "c": 0.0}, {"b": 0.9, "c": 0.1}])
    assert fused == {"a": 1.0, "b": 0.5 + 1.0, "c": 0.0}
    assert normalized_fusion([{"x": 3.0}, {}]) == {"x": 1.0}


def test_identifier_like_queries():
    from codesift.search.searcher import looks_like_identifier

    for q in ("parse_header", "HttpServer.start", "getUserName", "ns::Foo", "load_config()", "os.path join_parts"):
        assert looks_like_identifier(q), q
    for q in ("parse the header", "Return the number of seconds", "config", "", "a b c_d"):
        assert not looks_like_identifier(q), q
