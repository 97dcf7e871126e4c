"""benchmarks/real_repos.py: cached packages are not downloaded again; answers score on any target."""
from __future__ import annotations

import hashlib
import io
import json
import tarfile

import pytest

from tests.benchmarks_kit import benchmark_module


@pytest.fixture(scope="module")
def real_repos():
    return benchmark_module("real_repos")


def test_a_cached_archive_is_used_and_unpacked_without_its_top_folder(tmp_path, real_repos, monkeypatch):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        data = b"def f():\n    return 1\n"
        info = tarfile.TarInfo("package/src/f.py")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    archive = buf.getvalue()
    pkg = real_repos.Package("demo", "1.0.0", "npm", hashlib.sha256(archive).hexdigest())
    (tmp_path / pkg.archive).write_bytes(archive)

    def no_download(*args, **kwargs):
        raise AssertionError("a cached package was downloaded again")

    monkeypatch.setattr(real_repos.subprocess, "run", no_download)
    monkeypatch.setattr(real_repos.urllib.request, "urlopen", no_download)
    root = real_repos.unpack(pkg, tmp_path)
    assert (root / "src" / "f.py").read_text().startswith("def f") and not (root / "package").exists()
    # a damaged cache is fetched again (here: refused, since downloads are off)
    (tmp_path / pkg.archive).write_bytes(b"damaged")
    with pytest.raises(AssertionError, match="downloaded again"):
        real_repos.fetch(pkg, tmp_path)


def test_any_target_answers_and_scores_per_question(real_repos):
    targets = [{"path": "a.py", "start_line": 10, "end_line": 20}, {"path": "b.md", "start_line": 1, "end_line": 4}]
    results = [{"path": "c.py", "start_line": 1, "end_line": 5}, {"path": "b.md", "start_line": 1, "end_line": 3},
               {"path": "a.py", "start_line": 10, "end_line": 20}]
    assert real_repos.first_answer(results, targets) == 2
    assert real_repos.first_answer(results[:1], targets) is None
    out = real_repos.scores([{"targets": targets}, {"targets": targets[:1]}], [results, results[:1]])
    assert out == {"mrr@10": 0.25, "recall@1": 0.0, "recall@10": 0.5, "ranks": [2, None]}


def test_the_question_files_name_real_lines(real_repos):
    for name in real_repos.PACKAGES:
        questions = real_repos.load_questions(name)
        assert len(questions) >= 20 and len({q["query"] for q in questions}) == len(questions)
        for q in questions:
            assert q["answer_role"] in {"code", "docs", "changelog", "test", "manifest"} and q["targets"]
            for t in q["targets"]:
                assert 1 <= t["start_line"] <= t["end_line"] and not t["path"].startswith("/"), json.dumps(q)
