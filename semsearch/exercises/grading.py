"""Grade team notebooks: run each one, check every task it defines, run the pipeline, report.

**This runs the teams' code**, with the rights of whoever runs it, as every notebook grader
does (nbgrader's autograde, otter-grader): run it in an account or container that holds
nothing the teams should not see.

For each notebook (the student edition of the capstone, filled in), :func:`grade_notebook`

1. executes it top to bottom with ``nbclient`` (a time limit per cell, as nbgrader's
   ``ExecutePreprocessor.timeout``; a failing cell does not stop it, as in nbgrader's
   autograde), with ``SEMSEARCH_DATA`` (and ``SEMSEARCH_GLOVE``) set for the kernel;
2. then, in the same kernel, runs every ``check_<task>`` on the function of that name that the
   notebook defines (:data:`STUB_NAMES`), and the end-to-end pipeline with the team's functions
   on a fixed split of the data folder (:func:`semsearch.exercises.pipeline.run_pipeline`);
3. returns a :class:`TeamGrade`: each task passed / failed (with the failing case) / not
   written / missing, and Recall@1/5/10, median rank and MRR.

:func:`grade` does it for many notebooks and adds the library's own pipeline on the same split
as the reference row; :func:`format_markdown` and :meth:`GradeReport.as_dict` write the report.

Example
-------
>>> report = grade(["team1.ipynb", "team2.ipynb"], "data")            # doctest: +SKIP
>>> print(format_markdown(report))                                     # doctest: +SKIP
"""
from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Union

from semsearch.errors import InputError, MissingExtraError

PathLike = Union[str, "os.PathLike[str]"]

#: The name a notebook gives each task's function -> the task (its check).
STUB_NAMES = {
    "split_images": "split_images", "inverse_document_frequency": "idf", "make_se_text": "se_text", "Model": "model",
    "make_triples": "make_triples", "loss_accuracy": "loss_accuracy", "train_step": "train_step", "preprocess": "preprocess",
    "build_database": "build_database", "top_k": "top_k", "show_images": "show_images",
    "target_ranks": "target_ranks", "retrieval_scores": "retrieval_scores",
}
MARKER = "SEMSEARCH-GRADE="
SCORE_KEYS = ("recall@1", "recall@5", "recall@10", "median_rank", "mrr")


@dataclass
class TeamGrade:
    """One notebook's grade.

    Attributes
    ----------
    notebook : str
    tasks : dict
        Task -> the check's report as a dict (``status``: passed, failed, error, not written,
        or ``"missing"`` when the notebook defines no function of that name).
    scores : dict or None
        The pipeline's validation scores, computed by the library from the team's model and
        ``se_text`` (so that teams compare); None if it could not run (see ``error``).
    used : dict
        Task -> "team" or "library" in the pipeline.
    cell_errors : list of str
        Cells of the notebook that raised (``ename: evalue``).
    error : str or None
        Why the notebook or the pipeline could not be graded (time limit, dead kernel, ...).
    searches : list of [query, top 5 image ids]
        The pipeline's searches, with the team's database and top-k.
    """

    notebook: str
    tasks: Dict[str, dict] = field(default_factory=dict)
    scores: Optional[Dict[str, float]] = None
    used: Dict[str, str] = field(default_factory=dict)
    cell_errors: List[str] = field(default_factory=list)
    error: Optional[str] = None
    searches: List[list] = field(default_factory=list)

    @property
    def n_passed(self) -> int:
        return sum(t["status"] == "passed" for t in self.tasks.values())


@dataclass
class GradeReport:
    """Every team's grade and the library's reference scores on the same split."""

    teams: List[TeamGrade]
    reference: Dict[str, float]
    split: Dict[str, int]
    reference_searches: List[list] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {"reference": self.reference, "reference_searches": self.reference_searches, "split": self.split,
                "teams": [asdict(t) for t in self.teams]}


def grade_namespace(namespace: dict, data_dir: PathLike, *, glove_path: Optional[PathLike] = None,
                    seed: int = 0, **train_changes) -> dict:
    """Inside a team's kernel: check the functions ``namespace`` defines and run the pipeline.

    Returns a JSON-able dict ``{"tasks": {task: report}, "scores", "used", "error"}``.
    """
    from semsearch.exercises import CHECKS
    from semsearch.exercises.pipeline import run_pipeline

    tasks, functions, reports = {}, {}, {}
    for name, task in STUB_NAMES.items():
        function = namespace.get(name)
        if not callable(function):
            tasks[task] = {"task": task, "status": "missing", "hint": f"the notebook defines no function {name}"}
            continue
        report = CHECKS[task](function, verbose=False)
        tasks[task], functions[task], reports[task] = report.as_dict(), function, report
    result = {"tasks": tasks, "scores": None, "used": {}, "error": None, "searches": []}
    try:
        data, corpus, train_ids, val_ids = load_fixed_split(data_dir, seed)
        glove = _glove(glove_path)
        run = run_pipeline(data, corpus, functions, train_ids, val_ids, glove=glove, reports=reports, seed=seed, **train_changes)
        result.update(scores=run.library_scores, used=run.used, searches=_searches(run))
    except Exception as error:  # the team's functions failed inside the pipeline: that is the grade
        result["error"] = f"the pipeline failed: {type(error).__name__}: {' '.join(str(error).split())[:300]}"
    return result


def _searches(run) -> List[list]:
    return [[query, [int(i) for i in ids]] for query, ids, _ in run.searches]


def _glove(glove_path: Optional[PathLike]):
    from semsearch.glove import load_glove

    return load_glove(glove_path)


def load_fixed_split(data_dir: PathLike, seed: int = 0):
    """(data, caption corpus, train ids, validation ids): the data folder and the split every team is run on."""
    from semsearch.coco import CocoCaptions
    from semsearch.dataset import join, split_images
    from semsearch.descriptors import Descriptors
    from semsearch.paths import find_data_files

    caption_files, descriptor_file = find_data_files(Path(data_dir))
    coco = CocoCaptions.load(*caption_files)
    data = join(coco, Descriptors.load(descriptor_file), warn=False)
    train_ids, val_ids = split_images(data.image_ids, 0.2, seed)
    return data, coco.captions(coco.caption_ids), train_ids, val_ids


def grade_notebook(path: PathLike, data_dir: PathLike, *, glove_path: Optional[PathLike] = None, timeout: int = 600,
                   kernel_name: str = "python3", seed: int = 0, **train_changes) -> TeamGrade:
    """Execute one team notebook and grade it (see the module notes). The notebook file is not changed."""
    try:
        import nbclient
        import nbformat
        from nbclient.exceptions import CellTimeoutError, DeadKernelError
    except ImportError:
        raise MissingExtraError("grading notebooks needs the notebook extra: pip install 'semsearch[notebook]'") from None

    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such notebook")
    try:
        nb = nbformat.read(path, as_version=4)
    except Exception as error:  # not JSON, not a notebook: one line, and the other teams are still graded
        return TeamGrade(str(path), error=f"not a notebook: {type(error).__name__}: {' '.join(str(error).split())[:200]}")
    options = {"glove_path": str(glove_path) if glove_path else None, "seed": seed, **train_changes}
    nb.cells.append(nbformat.v4.new_code_cell(
        "import json as _json\nfrom semsearch.exercises.grading import grade_namespace as _grade\n"
        f"print({MARKER!r} + _json.dumps(_grade(globals(), {str(Path(data_dir).resolve())!r}, **{options!r})))"))
    env = {"SEMSEARCH_DATA": str(Path(data_dir).resolve()), "MPLBACKEND": "Agg"}
    if glove_path:
        env["SEMSEARCH_GLOVE"] = str(Path(glove_path).resolve())
    client = nbclient.NotebookClient(nb, timeout=timeout, kernel_name=kernel_name, allow_errors=True,
                                     resources={"metadata": {"path": str(path.resolve().parent)}})
    try:
        client.execute(env={**os.environ, **env})  # the kernel's environment; the grader's own stays as it is
    except CellTimeoutError:
        return TeamGrade(str(path), error=f"a cell ran longer than the time limit ({timeout} s)")
    except DeadKernelError as error:
        return TeamGrade(str(path), error=f"the kernel died: {' '.join(str(error).split())[:200]}")
    cell_errors = [f"{out.ename}: {' '.join(str(out.evalue).split())[:200]}"
                   for cell in nb.cells[:-1] if cell.cell_type == "code" for out in cell.outputs if out.output_type == "error"]
    text = "".join(out.get("text", "") for out in nb.cells[-1].outputs if out.output_type == "stream")
    if MARKER not in text:
        errors = [f"{out.ename}: {out.evalue}" for out in nb.cells[-1].outputs if out.output_type == "error"]
        return TeamGrade(str(path), cell_errors=cell_errors, error="grading failed: " + ("; ".join(errors) or "no result"))
    result = json.loads(text.split(MARKER, 1)[1].splitlines()[0])
    return TeamGrade(str(path), result["tasks"], result["scores"], result["used"], cell_errors, result["error"], result["searches"])


def grade(notebooks: Sequence[PathLike], data_dir: PathLike, *, glove_path: Optional[PathLike] = None, timeout: int = 600,
          kernel_name: str = "python3", seed: int = 0, **train_changes) -> GradeReport:
    """Grade every notebook, and run the library's pipeline on the same split as the reference."""
    if not notebooks:
        raise InputError("no notebooks to grade")
    for path in notebooks:  # before the reference run: a typo should not cost a training
        if not Path(path).is_file():
            raise InputError(f"{path}: no such notebook")
    from semsearch.exercises.pipeline import run_pipeline

    data, corpus, train_ids, val_ids = load_fixed_split(data_dir, seed)  # refuses a bad data folder before any kernel starts
    # the library's own pipeline on the same split: the row every team is compared with
    reference = run_pipeline(data, corpus, {}, train_ids, val_ids, glove=_glove(glove_path), seed=seed, **train_changes)
    teams = [grade_notebook(path, data_dir, glove_path=glove_path, timeout=timeout, kernel_name=kernel_name,
                            seed=seed, **train_changes) for path in notebooks]
    return GradeReport(teams, reference.library_scores, {"train_images": len(train_ids), "validation_images": len(val_ids),
                                                          "seed": seed}, _searches(reference))


# ----------------------------------------------------------------------------- the report

_MARK = {"passed": "pass", "failed": "FAIL", "error": "ERROR", "not written": "-", "missing": "missing", "skipped": "skip"}


def _cell(value: Optional[float], key: str) -> str:
    if value is None:
        return "n/a"
    return f"{value:g}" if key == "median_rank" else f"{value:.3f}"


def format_markdown(report: GradeReport) -> str:
    """The report as Markdown: one row per team (tasks, scores against the reference), then each failure."""
    from semsearch.exercises import CHECKS

    tasks = list(CHECKS)
    header = ["team", "passed", *tasks, "R@1", "R@5", "R@10", "median rank", "MRR", "MRR - ref"]
    lines = [f"# semsearch grades ({len(report.teams)} notebooks; validation {report.split['validation_images']} images, "
             f"train {report.split['train_images']}, seed {report.split['seed']})", "",
             "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    ref = report.reference
    lines.append("| *reference (library)* | | " + " | ".join("" for _ in tasks) + " | "
                 + " | ".join(_cell(ref.get(k), k) for k in SCORE_KEYS) + " | 0.000 |")
    for team in report.teams:
        scores = team.scores or {}
        delta = f"{scores['mrr'] - ref['mrr']:+.3f}" if team.scores else "n/a"
        marks = [_MARK.get(team.tasks.get(t, {}).get("status", "missing"), "?") for t in tasks]
        lines.append(f"| {Path(team.notebook).name} | {team.n_passed}/{len(tasks)} | " + " | ".join(marks) + " | "
                     + " | ".join(_cell(scores.get(k), k) for k in SCORE_KEYS) + f" | {delta} |")
    top = {query: ids[0] for query, ids in report.reference_searches}
    for team in report.teams:
        notes = []
        if team.error:
            notes.append(f"- **{team.error}**")
        for task, result in team.tasks.items():
            if result["status"] in ("failed", "error"):
                notes.append(f"- `{task}` {result['status']} on: {result.get('case')}")
                if result["status"] == "failed":
                    notes.append(f"  expected `{result.get('expected')}`, obtained `{result.get('obtained')}`; hint: {result.get('hint')}")
                else:
                    last = (result.get("traceback") or "").strip().splitlines()[-1:] or [""]
                    notes.append(f"  raised `{last[0]}`")
        for query, ids in team.searches:
            if ids and query in top and ids[0] != top[query]:
                notes.append(f"- top hit of {query!r}: {ids[0]} (reference {top[query]})")
        library = sorted(t for t, who in team.used.items() if who == "library")
        if library:
            notes.append(f"- the pipeline used the library's {', '.join(library)} (not written)")
        for error in team.cell_errors[:5]:
            notes.append(f"- a cell raised `{error}`")
        if notes:
            lines += ["", f"## {Path(team.notebook).name}", *notes]
    return "\n".join(lines) + "\n"
