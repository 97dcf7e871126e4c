"""The command line as a user runs it (in-process through click's runner)."""
from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner

from codesift.cli import cli
from tests.index.repo import make_repo

RESULT_KEYS = {"path", "start_line", "end_line", "score", "kind", "role", "symbol", "heading_path", "id"}


@pytest.fixture(scope="module")
def indexed(tmp_path_factory):
    repo = make_repo(tmp_path_factory.mktemp("cli") / "repo")
    # small batches: the repo's chunks go through the model in several of them
    r = CliRunner().invoke(cli, ["index", str(repo), "--workers", "1", "--device", "cpu", "--token-budget", "1024"])
    assert r.exit_code == 0, r.output
    assert "indexed 7 files" in r.stderr
    return repo


def run(args, cwd=None, input=None):
    import os

    old = os.getcwd()
    try:
        if cwd:
            os.chdir(cwd)
        return CliRunner().invoke(cli, args, input=input)
    finally:
        os.chdir(old)


def test_search_jsonl_contract(indexed):
    r = run(["search", "--jsonl", "-k", "5"], cwd=indexed / "src",
            input="load the configuration from a json file\n\nstart the http server\n")
    assert r.exit_code == 0, r.output
    lines = [json.loads(line) for line in r.stdout.splitlines()]
    assert [x["query"] for x in lines] == ["load the configuration from a json file", "start the http server"]
    for rec in lines:
        assert 0 < len(rec["results"]) <= 5
        for res in rec["results"]:
            assert set(res) == RESULT_KEYS
    top = lines[0]["results"][0]
    assert top["path"] == "src/config.py" and top["symbol"] == "load_config"  # relative to the indexed root
    assert lines[1]["results"][0]["symbol"] == "HttpServer.start"


def test_search_json_and_filters(indexed):
    r = run(["search", "configuration", "--json", "--path", "docs/*", "--index-dir", str(indexed / ".codesift")])
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    assert out["results"] and all(x["path"].startswith("docs/") for x in out["results"])
    assert out["results"][0]["heading_path"][0] == "User guide"
    r = run(["search", "distance", "--json", "--lang", "rust"], cwd=indexed)
    assert {x["path"] for x in json.loads(r.stdout)["results"]} == {"src/geometry.rs"}


def test_search_human_output(indexed):
    r = run(["search", "stop the server", "-k", "2", "--mode", "bm25"], cwd=indexed)
    assert r.exit_code == 0, r.output
    assert "src/server.py:" in r.stdout and "HttpServer.stop" in r.stdout


def test_search_notes_an_index_from_an_older_codesift(tmp_path):
    repo = make_repo(tmp_path / "repo")
    assert run(["index", str(repo), "--workers", "1", "--device", "cpu", "-q"]).exit_code == 0
    r = run(["search", "stop the server", "--mode", "bm25"], cwd=repo)
    assert r.exit_code == 0 and "note:" not in r.stderr
    from codesift.index.store import Store

    with Store(repo / ".codesift") as store:
        store.set_meta(index_format="2.2.3")
    r = run(["search", "stop the server", "--mode", "bm25"], cwd=repo)
    assert r.exit_code == 0 and "HttpServer.stop" in r.stdout
    assert "built by an older codesift" in r.stderr and "codesift index" in r.stderr
    r = run(["index", str(repo), "--workers", "1", "--device", "cpu"])
    assert r.exit_code == 0 and "index format updated" in r.stderr
    assert "note:" not in run(["search", "stop the server", "--mode", "bm25"], cwd=repo).stderr


def test_status(indexed):
    r = run(["status", "--json"], cwd=indexed)
    info = json.loads(r.stdout)
    assert info["files"] == 7 and info["chunks"] > 7 and info["state"] == "complete"
    assert info["model"] == "sentence-transformers/all-MiniLM-L6-v2" and info["size_bytes"] > 0
    assert "python" in info["languages"]
    r = run(["status"], cwd=indexed)
    assert "chunks" in r.stdout and "python" in r.stdout


def test_no_index_is_a_clear_error(tmp_path):
    r = run(["search", "anything"], cwd=tmp_path)
    assert r.exit_code == 1 and "codesift index" in r.output


def test_usage_errors(indexed):
    assert run(["search"], cwd=indexed).exit_code == 2
    assert run(["search", "--mode", "fuzzy", "x"], cwd=indexed).exit_code == 2
    assert run(["index", str(indexed), "--batch-tokens", "10"]).exit_code == 2  # below one sequence's length


def test_embed_npy_and_jsonl(tmp_path):
    src = tmp_path / "texts.txt"
    src.write_text("first text\nsecond text\n\n")
    r = run(["embed", str(src), "-o", str(tmp_path / "v.npy"), "--device", "cpu"])
    assert r.exit_code == 0, r.output
    v = np.load(tmp_path / "v.npy")
    assert v.shape == (3, 384) and np.allclose(np.linalg.norm(v, axis=1), 1, atol=1e-5)
    r = run(["embed", "-", "--device", "cpu"], input="only one\n")
    rec = json.loads(r.stdout)
    assert rec["index"] == 0 and rec["text"] == "only one" and len(rec["vector"]) == 384
    assert abs(np.dot(rec["vector"], v[0])) < 0.9999  # a different text, a different vector


def test_models_lists_default():
    r = run(["models", "--json"])
    assert r.exit_code == 0
    assert any(m.get("name") == "sentence-transformers/all-MiniLM-L6-v2" for m in json.loads(r.stdout)["models"])


def test_bad_model_path_is_clear(tmp_path):
    r = run(["embed", "-", "--model", str(tmp_path / "nope")], input="x\n")
    assert r.exit_code == 1 and "not found" in r.output and "Traceback" not in r.output


def test_identifier_query_finds_its_definition(indexed):
    for name, symbol in (("merge_env", "merge_env"), ("HttpServer.handle_request", "HttpServer.handle_request")):
        r = run(["search", name, "--json", "-k", "3"], cwd=indexed)
        assert json.loads(r.stdout)["results"][0]["symbol"] == symbol


def test_search_process_never_imports_torch_nor_onnxruntime(indexed):
    """A cold search encodes its query in numpy: importing torch, or building an ONNX Runtime
    session, would cost more than the whole search; nor does it load what only indexing uses (the
    walker, the chunkers, the GGUF and ONNX weight readers)."""
    import subprocess
    import sys

    unused = ["torch", "onnxruntime", "codesift.walk.walker", "codesift.chunk.markdown", "codesift.chunk.text",
              "codesift.embed.gguf_file", "codesift.embed.onnx_file"]
    code = ("import sys; from click.testing import CliRunner; from codesift.cli import cli; "
            "r = CliRunner().invoke(cli, ['search', 'load the configuration', '-k', '2']); "
            f"assert r.exit_code == 0, r.output; print(*[m for m in {unused!r} if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], cwd=indexed, capture_output=True, text=True, check=True)
    assert out.stdout.split() == []


def test_search_process_imports_no_chunker_walker_nor_indexer(indexed):
    """A cold search is mostly imports: the stages it does not run stay out of its process, and a
    plain query is tokenized without the tokenizers library (embed/tokenizer.PlainWordPiece)."""
    import subprocess
    import sys

    unused = ["codesift.chunk.chunker", "codesift.walk.walker", "codesift.search.navigate",
              "codesift.embed.embedder", "codesift.index.indexer", "tokenizers", "codesift.chunk.model", "hashlib"]
    code = ("import sys; from click.testing import CliRunner; from codesift.cli import cli; "
            "r = CliRunner().invoke(cli, ['search', 'load the configuration', '-k', '2']); "
            f"assert r.exit_code == 0, r.output; print([m for m in {unused!r} if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], cwd=indexed, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_one_query_command_exits_with_its_status_and_output(indexed):
    """`main` ends a search's process without the interpreter's teardown: the output is all there,
    exit handlers run, and the status is the command's (1 for no results, 2 for a usage error)."""
    import subprocess
    import sys

    code = ("import atexit, sys; sys.argv[0] = 'codesift'\n"
            "atexit.register(lambda: sys.stderr.write('EXIT HANDLER RAN\\n'))\n"
            "from codesift.cli import main\n"
            "main()\n")

    def codesift(*args):
        return subprocess.run([sys.executable, "-c", code, *args], cwd=indexed, capture_output=True, text=True)

    found = codesift("search", "load the configuration", "-k", "2", "--json")
    assert found.returncode == 0 and len(json.loads(found.stdout)["results"]) == 2
    assert "EXIT HANDLER RAN" in found.stderr
    none = codesift("search", "zzzqqxv", "--mode", "bm25")
    assert none.returncode == 1 and "no results" in none.stderr and "EXIT HANDLER RAN" in none.stderr
    usage = codesift("search", "x", "--mode", "nonsense")
    assert usage.returncode == 2 and "EXIT HANDLER RAN" in usage.stderr
    # `codesift search ... | head -1`: the reader leaves early (more answers than a pipe holds: the
    # write fails, CodesiftGroup closes stderr); the search still ends with 0, as before
    reader_left = subprocess.Popen([sys.executable, "-c", code, "search", "--jsonl", "-k", "20"], cwd=indexed,
                                   stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    reader_left.stdin.write(b"load the configuration\n" * 400)
    reader_left.stdin.close()
    reader_left.stdout.readline()
    reader_left.stdout.close()
    assert reader_left.wait() == 0


def test_search_runs_blas_on_one_thread(indexed):
    """`codesift search` caps numpy's BLAS at one thread before numpy loads: its products are small,
    and threads that wait for each other cost a cold search most on a busy machine."""
    import os
    import subprocess
    import sys

    # main() ends a search's process itself (no interpreter teardown): what it leaves to be
    # checked is read by an exit handler, which it runs first
    code = ("import atexit, sys; sys.argv = ['codesift', 'search', 'load the configuration', '-k', '2']\n"
            "def report():\n"
            "    from threadpoolctl import threadpool_info\n"
            "    print('threads', *[p['num_threads'] for p in threadpool_info() if p['user_api'] == 'blas'])\n"
            "atexit.register(report)\n"
            "from codesift.cli import main\n"
            "main()\n")
    env = {k: v for k, v in os.environ.items() if not k.endswith("_NUM_THREADS")}
    out = subprocess.run([sys.executable, "-c", code], cwd=indexed, capture_output=True, text=True, check=True,
                         env=env)
    counts = out.stdout.split("threads", 1)[1].split()
    assert counts and set(counts) == {"1"}, out.stdout
