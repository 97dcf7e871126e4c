"""The figures check: each way a figure can lack its log fails, a cited figure passes, and the
repository's own README.md and RESULTS.md pass."""
from __future__ import annotations

import json
import subprocess
import textwrap
from pathlib import Path

import pytest

from codesift.devtools import figures

REPO = Path(__file__).resolve().parents[2]
RUN_LOG = "results/quality-20261124-101500-abc1234.json"


def make_repo(root: Path, results_md: str, readme: str = "# tool\n") -> Path:
    """README.md, benchmarks/RESULTS.md, one JSON log as the result writer makes them, one old
    plain-text log under results/h100/ and one plain-text log outside it."""
    (root / "benchmarks/results/h100").mkdir(parents=True)
    (root / "README.md").write_text(textwrap.dedent(readme))
    (root / "benchmarks/RESULTS.md").write_text(textwrap.dedent(results_md))
    (root / "benchmarks" / RUN_LOG).write_text(json.dumps({
        "date": "2026-11-24T10:15:00Z", "host": "h200-1", "commit": "abc1234", "command": "python benchmarks/quality.py",
        "mrr@10": 0.4540, "tokens": 2645653, "tok_s": 6.61e6, "warm_s": [3.24, 3.43]}))
    (root / "benchmarks/results/h100/index_wall.log").write_text("cold 14.47 s, warm 3.24 s (661 files, 22970 chunks)\n")
    (root / "benchmarks/results/notes.txt").write_text("warm 3.24 s\n")
    return root


def failures(root: Path) -> list[tuple[str, int, str]]:
    return [(f.path, f.line, f.why) for f in figures.check(root)]


def test_figures_are_decimals_and_grouped_numbers_outside_code_and_versions():
    line = ("Python 3.11.7, `--ratio 0.5`, x0.8, fp16, 12.3x, 1,514,772 tok/s, 6.61M, 661 files, "
            "0.4540 / 0.3762, -0.002, [log](results/run-1.2.json), [`0.9`](a.md)")
    assert figures.figures(line) == ["12.3", "1,514,772", "6.61", "0.4540", "0.3762", "0.002"]


def test_cited_figures_pass(tmp_path):
    root = make_repo(tmp_path, f"""\
        # Results

        | corpus | MRR@10 | tokens | log |
        | --- | --- | --- | --- |
        | stdlib | 0.454 | 2,645,653 | [log]({RUN_LOG}) |

        Warm 3.24 s and 3.43 s ([log]({RUN_LOG})); cold 14.47 s ([log](results/h100/index_wall.log), not re-measured).
        Warm 3.24 s at commit 1a2b3c4 ([log](results/h100/index_wall.log)).
        Version 3.11.7, settings in code: `k = 0.5`; plain counts: 661 files.
        Shown in code, not cited: `[log](results/missing.json)` at `commit 0000000`.

        ```sh
        python bench.py --alpha 0.25
        ```

        ## History (not re-measured)

        Stdlib once scored 0.4376.

        ### Older still

        0.3437 on the first version.
        """, readme=f"# tool\n\nWarm 3.24 s on one GPU ([log](benchmarks/{RUN_LOG})).\n")
    assert failures(root) == []
    assert figures.main(["--root", str(root)]) == 0


@pytest.mark.parametrize("line, why", [
    ("Warm 3.24 s.", "3.24 cite no log"),
    ("Warm 3.25 s ([log](" + RUN_LOG + ")).", "3.25 not in the cited log (" + RUN_LOG + ")"),
    # json.dumps wrote 0.454: the same number written otherwise is not the log's figure
    ("MRR 0.4540 ([log](" + RUN_LOG + ")).", "0.4540 not in the cited log"),
    ("Tokens 2,645,654 ([log](" + RUN_LOG + ")).", "2,645,654 not in the cited log"),
    ("Warm 3.24 s ([log](results/missing.json)).", "cites benchmarks/results/missing.json, which does not exist"),
    ("Warm 3.24 s ([log](results/h100/index_wall.log)).", "[log](results/h100/index_wall.log) records no commit"),
    ("Warm 3.24 s ([log](results/notes.txt)), not re-measured.", "[log](results/notes.txt) is plain text"),
    ("Warm 3.24 s ([log](../README.md)).", "[log](../README.md) is not under benchmarks/results/"),
])
def test_each_missing_citation_fails(tmp_path, line, why):
    root = make_repo(tmp_path, f"# Results\n\nA line without figures.\n{line}\n")
    found = failures(root)
    assert len(found) == 1 and found[0][:2] == ("benchmarks/RESULTS.md", 4), found
    assert found[0][2].startswith(why), found[0][2]


def test_json_log_without_commit_date_or_host_fails(tmp_path):
    root = make_repo(tmp_path, f"Warm 3.24 s ([log]({RUN_LOG})).\n")
    log = root / "benchmarks" / RUN_LOG
    log.write_text(json.dumps({"date": "2026-11-24", "host": "", "warm_s": 3.24}))
    assert failures(root) == [("benchmarks/RESULTS.md", 1, f"benchmarks/{RUN_LOG} lacks host, commit "
                                                           "(a JSON log carries date, host, commit)")]


def test_a_heading_marks_its_section_only(tmp_path):
    root = make_repo(tmp_path, """\
        ## History (not re-measured)
        0.4376 then.
        ### Detail
        0.3437 before.
        ## Current
        0.4540 now.
        """)
    assert failures(root) == [("benchmarks/RESULTS.md", 6,
                               '0.4540 cite no log: link one on this line, [log](path to a file under '
                               'benchmarks/results/), or say "not re-measured"')]


def test_readme_figures_are_checked_too(tmp_path):
    root = make_repo(tmp_path, "# Results\n", readme="Indexes the standard library in about 4.01 s.\n")
    assert [f[:2] for f in failures(root)] == [("README.md", 1)]


def test_a_named_commit_must_exist_when_git_can_tell(tmp_path):
    root = make_repo(tmp_path, "Warm 3.24 s at commit {sha} ([log](results/h100/index_wall.log)).\n")
    git = ["git", "-C", str(root), "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "add", "-A"], check=True)
    subprocess.run([*git, "commit", "-qm", "logs"], check=True)
    sha = subprocess.run([*git, "rev-parse", "--short", "HEAD"], check=True, capture_output=True, text=True).stdout.strip()
    results = root / "benchmarks/RESULTS.md"
    results.write_text(results.read_text().format(sha=sha))
    assert failures(root) == []
    results.write_text(results.read_text().replace(sha, "0badc0de"))
    assert failures(root) == [("benchmarks/RESULTS.md", 1, "commit 0badc0de is not a commit of this repository")]


def test_main_prints_file_line_why(tmp_path, capsys):
    root = make_repo(tmp_path, "# Results\n\nWarm 3.25 s.\n")
    assert figures.main(["--root", str(root)]) == 1
    assert capsys.readouterr().out.startswith("benchmarks/RESULTS.md:3: 3.25 cite no log")


def test_repo_figures_cite_logs():
    found = figures.check(REPO)
    assert not found, "\n".join(map(str, found))
