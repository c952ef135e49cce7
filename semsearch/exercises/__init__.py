"""Capstone exercises that check themselves: one ``check_<task>(student_function)`` per team task.

Each check runs a battery of cases against the library's own implementation of the task
(smallest case first) and prints either a pass with what was checked, or the first failing
case: its input, the expected and the obtained value, and a one-line hint. A stub that still
raises ``NotImplementedError`` is reported as "not written yet"; an exception from the student's
code is shown as the student's own traceback, with the case that raised it.

=================  ==========================================================  ==============================
check              the student's function (the library's signature)            the library's implementation
=================  ==========================================================  ==============================
split_images       ``split_images(image_ids, validation_fraction, seed)``      ``semsearch.split_images``
idf                ``inverse_document_frequency(texts) -> {word: idf}``        ``semsearch.text``
se_text            ``make_se_text(captions, glove) -> se_text``                ``TextEmbedder.fit``
model              ``Model(input_dim, output_dim, seed=0)``                    ``semsearch.Autoembedder``
make_triples       ``make_triples(split, *, seed=0, ...)``                     ``semsearch.make_triples``
loss_accuracy      ``loss_accuracy(sim_good, sim_bad, margin)``                ``semsearch.loss_accuracy``
train_step         ``train_step(model, optimizer, good, bad, captions, m)``    ``exercises.reference``
preprocess         ``preprocess(image, backbone) -> (3, 224, 224)``             ``Backbone.preprocess``
build_database     ``build_database(model, descriptors)``                      ``ImageDatabase.build``
top_k              ``top_k(scores (Q, N), k) -> (Q, k) columns``               ``semsearch.database.top_k``
show_images        ``show_images(image_ids, scores, *, image_dir)``            ``semsearch.show_images``
target_ranks       ``target_ranks(scores (Q, N), targets (Q,))``               ``semsearch.evaluation``
retrieval_scores   ``retrieval_scores(ranks, n_images, ks)``                   ``semsearch.evaluation``
=================  ==========================================================  ==============================

Example
-------
>>> from semsearch.exercises import check_loss_accuracy
>>> def loss_accuracy(sim_good, sim_bad, margin):
...     raise NotImplementedError
>>> report = check_loss_accuracy(loss_accuracy)
loss_accuracy: not written yet (it raises NotImplementedError): write it, then run this check again
"""
from semsearch.exercises.cnn_checks import check_preprocess
from semsearch.exercises.data_checks import check_make_triples, check_split_images
from semsearch.exercises.display_checks import check_show_images
from semsearch.exercises.loss_checks import check_loss_accuracy
from semsearch.exercises.metrics_checks import check_retrieval_scores, check_target_ranks
from semsearch.exercises.model_checks import check_model
from semsearch.exercises.report import CheckReport
from semsearch.exercises.search_checks import check_build_database, check_top_k
from semsearch.exercises.text_checks import check_idf, check_se_text
from semsearch.exercises.training_checks import check_train_step

#: Task name -> its check, in the notebook's order.
CHECKS = {
    "split_images": check_split_images,
    "idf": check_idf,
    "se_text": check_se_text,
    "model": check_model,
    "make_triples": check_make_triples,
    "loss_accuracy": check_loss_accuracy,
    "train_step": check_train_step,
    "preprocess": check_preprocess,
    "build_database": check_build_database,
    "top_k": check_top_k,
    "show_images": check_show_images,
    "target_ranks": check_target_ranks,
    "retrieval_scores": check_retrieval_scores,
}


def check_all(functions: dict, *, verbose: bool = True) -> dict:
    """Run the check of every task named in ``functions`` (task -> the team's function); task -> report."""
    return {task: CHECKS[task](function, verbose=verbose) for task, function in functions.items() if task in CHECKS}


__all__ = ["CHECKS", "CheckReport", "check_all", "check_build_database", "check_idf", "check_loss_accuracy", "check_make_triples",
           "check_model", "check_preprocess", "check_retrieval_scores", "check_se_text", "check_show_images", "check_split_images",
           "check_target_ranks", "check_top_k", "check_train_step"]
