"""Exporting an index: chunk files with the YAML header of seed document 000, the manifest and
llm.md listing every chunk, and byte-identical output for the same tree (folder and zip)."""
from __future__ import annotations

import hashlib
import zipfile
from pathlib import Path

import pytest
import yaml

from codesift.chunk.lines import split_lines
from codesift.errors import CodesiftError
from codesift.export import export_index
from codesift.export.header import HEADER_KEYS, yaml_string
from codesift.index.indexer import index_tree
from codesift.index.store import Store
from codesift.walk import read_text
from tests.index.repo import make_repo


@pytest.fixture(scope="module")
def indexed(tmp_path_factory, embedder):
    repo = make_repo(tmp_path_factory.mktemp("export") / "repo")
    (repo / "docs" / "ünïcode — notes.md").write_text("# Título: \"quoted\"\n\nTab\there and 😀 \x0c form feed\n")
    index_tree(repo, embedder=embedder, workers=1)
    return repo


def export(repo: Path, out: Path, zip: bool = False):
    with Store(repo / ".codesift") as store:
        return export_index(store, out, zip=zip)


def split_chunk_file(path: Path) -> tuple[dict, bytes]:
    data = path.read_bytes()
    assert data.startswith(b"---\n")
    header, body = data[4:].split(b"\n---\n\n", 1)
    return yaml.safe_load(header.decode("utf-8")), body


def all_files(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_chunk_files_headers_and_content(indexed, tmp_path):
    summary = export(indexed, tmp_path / "out")
    with Store(indexed / ".codesift") as store:
        chunks = {c.id: c for c in store.iter_chunks()}
    files = sorted((tmp_path / "out" / "chunks").glob("*.md"))
    assert len(files) == len(chunks) == summary.chunks
    seen_index = []
    for f in files:
        header, body = split_chunk_file(f)
        assert list(header) == list(HEADER_KEYS)
        c = chunks[header["id"]]
        assert f.name == f"{header['ref']}.md" and header["id"].startswith(header["ref"])
        assert header["content_sha256"] == hashlib.sha256(body).hexdigest()
        assert body.decode("utf-8") == c.content
        assert header["path"] == c.path and header["kind"] == c.kind and header["symbol"] == c.symbol
        assert header["heading_path"] == list(c.heading_path)
        assert header["token_estimate"] == c.token_estimate
        assert (header["compacted"], header["address"], header["asset_path"]) == (False, None, None)
        assert header["slug"] and header["slug"] == header["slug"].lower() and " " not in header["slug"]
        start, end = header["lines"]
        source = split_lines(read_text(indexed / header["path"])[0])  # lines as editors number them
        assert "\n".join(source[start - 1:end]) == c.content  # the lines are the source file's
        seen_index.append((header["path"], start, header["chunk_index"]))
    in_order = sorted(seen_index)
    assert [i for _, _, i in in_order] == list(range(len(in_order)))  # running index in path/line order


def test_manifest_and_llm_md_list_every_chunk(indexed, tmp_path):
    export(indexed, tmp_path / "out")
    refs = {p.stem for p in (tmp_path / "out" / "chunks").glob("*.md")}
    rows = (tmp_path / "out" / "manifest.llm.tsv").read_text(encoding="utf-8").splitlines()
    assert rows[0].split("\t") == ["ref", "path", "lines", "kind", "symbol_or_heading", "token_estimate"]
    assert {r.split("\t")[0] for r in rows[1:]} == refs and len(rows) - 1 == len(refs)
    assert all(len(r.split("\t")) == 6 for r in rows)
    assert any(r.split("\t")[1:5] == ["src/config.py", "5-7", "function", "load_config"] for r in rows)

    llm = (tmp_path / "out" / "llm.md").read_text(encoding="utf-8")
    assert llm.startswith("# ") and "manifest.llm.tsv" in llm.split("## Outline")[0]
    assert all(f"- {ref} (" in llm for ref in refs)
    assert "### src/config.py (python, 14 lines)" in llm
    assert "load_config()" in llm and "User guide > Configuration > Environment variables" in llm


def test_export_is_deterministic(indexed, tmp_path):
    export(indexed, tmp_path / "a")
    export(indexed, tmp_path / "b")
    assert all_files(tmp_path / "a") == all_files(tmp_path / "b")
    export(indexed, tmp_path / "a")  # again into the same folder: replaced, not mixed
    assert all_files(tmp_path / "a") == all_files(tmp_path / "b")

    za = export(indexed, tmp_path / "x" / "export", zip=True).out
    zb = export(indexed, tmp_path / "y" / "export.zip", zip=True).out
    assert za.name == zb.name == "export.zip"
    assert za.read_bytes() == zb.read_bytes()
    with zipfile.ZipFile(za) as zf:
        names = zf.namelist()
        assert names == sorted(names) and all(n.startswith("export/") for n in names)
        assert {n.removeprefix("export/"): zf.read(n) for n in names} == all_files(tmp_path / "a")


def test_refuses_to_overwrite_other_folders(indexed, tmp_path):
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "thesis.tex").write_text("keep me")
    with pytest.raises(CodesiftError, match="no previous codesift export"):
        export(indexed, tmp_path / "mine")
    assert (tmp_path / "mine" / "thesis.tex").read_text() == "keep me"


@pytest.mark.parametrize("text", ["plain", 'q"uo\\te', "tab\tnew\nline", "\x7f\x85\u2028\ufeff", "é😀", "a: b # c"])
def test_yaml_strings_read_back_exactly(text):
    assert yaml.safe_load(yaml_string(text)) == text
