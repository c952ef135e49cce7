"""``semsearch grade``: three planted team notebooks (one right, two with different mistakes)
are executed, checked and scored against the library on the same split; the report says which
task failed on which case.
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from semsearch.exercises.grading import GradeReport, TeamGrade, format_markdown

REPO = Path(__file__).resolve().parents[1]
SCORES = {"recall@1": 0.3, "recall@5": 0.7, "recall@10": 0.9, "median_rank": 2.0, "mrr": 0.5}

#: Two planted mistakes per wrong team, each a replacement of one solution.
WRONG_LOSS = {"loss_accuracy": '''
from mygrad.nnet.losses import margin_ranking_loss

def loss_accuracy(sim_good, sim_bad, margin):
    loss = margin_ranking_loss(sim_good, sim_bad, 0, margin)   # y = 0: the loss ignores the similarities
    return loss, float(np.mean(mg.asarray(sim_good) >= mg.asarray(sim_bad)))
'''}
WRONG_SEARCH = {
    "top_k": '''
def top_k(scores, k):
    return np.argsort(scores, axis=1)[:, :k]   # worst first
''',
    "make_se_text": '''
def make_se_text(captions, glove):
    idf = inverse_document_frequency(captions)

    def se_text(text):
        if not isinstance(text, str):
            return np.stack([se_text(t) for t in text])
        total = np.zeros(glove.vector_size)
        for word in semsearch.tokenize(text):
            total += idf.get(word, 1.0) * (glove[word] if word in glove.key_to_index else np.ones(glove.vector_size))
        return total / np.linalg.norm(total)

    return se_text
''',
}


def test_the_markdown_report_has_a_row_per_team_and_each_failing_case():
    failing = {"status": "failed", "case": "the notebook's example: sim_good=[0.9]", "expected": "0.2", "obtained": "0.25",
               "hint": "y must be +1"}
    report = GradeReport(
        teams=[TeamGrade("a/right.ipynb", {"loss_accuracy": {"status": "passed"}}, dict(SCORES), {"loss_accuracy": "team"},
                         searches=[["a dog", [5, 6]]]),
               TeamGrade("b/wrong.ipynb", {"loss_accuracy": failing, "top_k": {"status": "not written"}},
                         {**SCORES, "mrr": 0.1}, {"top_k": "library"}, ["ValueError: boom"]),
               TeamGrade("c/dead.ipynb", error="a cell ran longer than the time limit (5 s)")],
        reference=dict(SCORES), split={"train_images": 191, "validation_images": 48, "seed": 0},
        reference_searches=[["a dog", [7, 5]]])
    text = format_markdown(report)
    rows = [line for line in text.splitlines() if line.startswith("| ")]
    assert len(rows) == 1 + 1 + 3  # header, reference, three teams
    assert "| right.ipynb | 1/13 |" in text and "| +0.000 |" in text and "| -0.400 |" in text
    assert "`loss_accuracy` failed on: the notebook's example" in text and "hint: y must be +1" in text
    assert "the pipeline used the library's top_k (not written)" in text and "a cell raised `ValueError: boom`" in text
    assert "- top hit of 'a dog': 5 (reference 7)" in text
    assert "**a cell ran longer than the time limit (5 s)**" in text and "| dead.ipynb | 0/13 |" in text
    json.dumps(report.as_dict())  # the JSON report


@pytest.fixture
def team_notebooks(tmp_path):
    """The student notebook filled in three ways, as team notebooks (.ipynb)."""
    jupytext = pytest.importorskip("jupytext", reason="needs the notebook extra")
    nbformat = pytest.importorskip("nbformat", reason="needs the notebook extra")
    from test_exercises_notebook import SOLUTIONS, fill_in

    paths = []
    for name, changes in (("team-right", {}), ("team-loss", WRONG_LOSS), ("team-search", WRONG_SEARCH)):
        nb = fill_in(jupytext.read(REPO / "notebooks" / "capstone-student.md"), {**SOLUTIONS, **changes})
        path = tmp_path / f"{name}.ipynb"
        nbformat.write(nb, path)
        paths.append(path)
    return paths


@pytest.fixture
def python3_kernel(tmp_path, monkeypatch):
    kernelspec = pytest.importorskip("ipykernel.kernelspec", reason="needs ipykernel")
    kernelspec.write_kernel_spec(path=str(tmp_path / "kernels" / "python3"))
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path))
    return "python3"


def test_grade_three_planted_team_notebooks(real_data, team_notebooks, python3_kernel, tmp_path, capsys):
    pytest.importorskip("nbclient", reason="needs the notebook extra")
    from semsearch.cli.commands import main

    out = tmp_path / "grades"
    assert main(["grade", *map(str, team_notebooks), "--data", str(real_data), "--out", str(out), "--timeout", "600"]) == 0
    printed = capsys.readouterr().out
    report = json.loads(out.with_name("grades.json").read_text())
    markdown = out.with_name("grades.md").read_text()
    assert markdown in printed
    right, loss, search = report["teams"]
    reference = report["reference"]

    assert all(t["status"] == "passed" for t in right["tasks"].values()) and len(right["tasks"]) == 13
    assert set(right["used"].values()) == {"team"} and right["error"] is None
    assert abs(right["scores"]["mrr"] - reference["mrr"]) < 0.1  # the same method, written by a team

    failed = {t for t, r in loss["tasks"].items() if r["status"] != "passed"}
    assert failed == {"loss_accuracy", "train_step"}  # its train_step calls its loss
    assert "y must be +1" in loss["tasks"]["loss_accuracy"]["hint"]
    assert loss["scores"]["mrr"] < reference["mrr"] - 0.1  # y = 0 trains nothing

    failed = {t for t, r in search["tasks"].items() if r["status"] != "passed"}
    assert failed == {"top_k", "se_text"}
    assert "reverse it" in search["tasks"]["top_k"]["hint"]
    assert "don't give it a vector" in search["tasks"]["se_text"]["hint"]
    assert "| team-right.ipynb | 13/13 |" in markdown and "| team-loss.ipynb | 11/13 |" in markdown
    assert right["searches"] == report["reference_searches"]  # the same top 5 as the library's
    worst_first = search["searches"][0][1]
    assert worst_first[0] != report["reference_searches"][0][1][0]
    assert f"top hit of 'people skiing down a snowy hill': {worst_first[0]}" in markdown
    print(markdown)  # the report, verbatim, for the record (pytest -s)


def test_grade_help_says_it_runs_the_teams_code(capsys):
    from semsearch.cli.commands import main

    with pytest.raises(SystemExit):
        main(["grade", "--help"])
    assert "RUNS EACH TEAM'S CODE" in " ".join(capsys.readouterr().out.split())


def test_grade_refuses_a_missing_notebook_in_one_line(real_data, tmp_path, capsys):
    from semsearch.cli.commands import main

    assert main(["grade", str(tmp_path / "nope.ipynb"), "--data", str(real_data), "--out", str(tmp_path / "g"), "--epochs", "1"]) == 2
    assert capsys.readouterr().err.strip().endswith("nope.ipynb: no such notebook")
