"""Speed of training and search, against hand-written baselines timed in the same run.

Run by hand (it is not a test)::

    python benchmarks/speed.py                   # full size: 414,113 triples, 82,612 images
    python benchmarks/speed.py --triples 50000   # a quick run

It prints a table of times and of ratios measured in this run, and checks three targets:

1. One training epoch (batch 32, D = 512, synthetic data) takes at most 1.5x a NumPy loop
   with hand-derived gradients of the same model (dense D -> 50, row L2-normalise, cosine
   with the caption vector, margin ranking loss, SGD with momentum 0.9, as MyNN does it).
   The "obvious" MyGrad loop (good and bad images through the layer separately) is timed
   too. All loops run with one BLAS thread, as ``semsearch.training.train`` does.
2. One query (a vector, k = 10) over 82,612 images takes under 1 ms (median), and at one
   thread no longer than faiss ``IndexFlatIP`` (median ratio of interleaved blocks), same ids.
3. A batch of 1,000 queries is no slower per query than faiss ``IndexFlatIP`` (k = 10).

Beside target 1 it times one epoch of each in-batch loss (``TrainConfig(loss=...)``: vse0,
vse++, infonce) against the triple loss on the same synthetic data, as ratios in the same run.

Search is timed twice: with one thread for both NumPy's BLAS and faiss's OpenMP (the fair
comparison on a busy machine), and with each library's default number of threads.

The machine may be busy with other work: every comparison interleaves its repetitions, and
the ratios, not the absolute times, are what the targets judge. The training table also gives
the ratio of CPU times, which other processes disturb less than wall-clock times.
"""
from __future__ import annotations

import argparse
import os
import time
import warnings

import mygrad as mg
import numpy as np
from mygrad.nnet.losses import margin_ranking_loss
from mynn.optimizers.sgd import SGD
from threadpoolctl import threadpool_limits

from semsearch.database import ImageDatabase
from semsearch.model import Autoembedder
from semsearch.dataset import Split
from semsearch.loss import loss_accuracy
from semsearch.training import History, TeamFunctions, TrainConfig, choose_fast_path, train_epoch
from semsearch.triples import make_triples

COCO_TRAIN_CAPTIONS = 414_113  # captions of COCO train2014: one triple each
COCO_TRAIN_IMAGES = 82_783
COCO_DATABASE_IMAGES = 82_612  # images with descriptors in the search database
DIM, BATCH = 512, 32
CONFIG = TrainConfig()
MARGIN, LEARNING_RATE, MOMENTUM = CONFIG.margin, CONFIG.learning_rate, CONFIG.momentum


# --------------------------------------------------------------------------- data
def unit_rows(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


class SyntheticTable:
    """A split without COCO (|N(0,1)| descriptors) and random unit caption vectors."""

    def __init__(self, n_triples: int, n_images: int, seed: int = 0):
        rng = np.random.default_rng(seed)
        image_rows = np.sort(rng.integers(0, n_images, size=n_triples))  # ~5 captions per image
        self.split = Split(
            image_ids=np.arange(1, n_images + 1, dtype=np.int64), caption_ids=np.arange(n_triples, dtype=np.int64),
            caption_texts=[], image_rows=image_rows,
            descriptor_vectors=np.abs(rng.standard_normal((n_images, DIM), dtype=np.float32)),
        )
        self.caption_vectors = unit_rows(rng.normal(size=(n_triples, 50)))
        self.good_rows, self.descriptors = image_rows, self.split.descriptor_vectors

    def __len__(self) -> int:
        return len(self.good_rows)

    def sample_bad_rows(self, rng):
        return make_triples(self.split, seed=rng).bad_rows


def synthetic_table(n_triples: int, n_images: int, seed: int = 0) -> SyntheticTable:
    return SyntheticTable(n_triples, n_images, seed)


# --------------------------------------------------------------------------- the three training loops
def library_epoch(model, optim, table, rng):
    history = History()
    triples = make_triples(table.split, seed=rng)  # what train() draws each epoch
    fast = choose_fast_path(model, table.split, table.caption_vectors, TeamFunctions(make_triples, loss_accuracy), MARGIN)  # as train() decides
    train_epoch(model, optim, triples, table.caption_vectors, rng, history, CONFIG, fast=fast)
    return history.train_loss[-1]


def obvious_mygrad_epoch(model, optim, table, rng):
    """MyGrad written the obvious way: good and bad images through the layer separately."""
    bad_rows = table.sample_bad_rows(rng)
    order = rng.permutation(len(table))
    losses = []
    for start in range(0, len(order), BATCH):
        batch = order[start : start + BATCH]
        captions = table.caption_vectors[batch]
        good = model.dense(table.descriptors[table.good_rows[batch]])
        bad = model.dense(table.descriptors[bad_rows[batch]])
        good = good / mg.sqrt(mg.sum(good**2, axis=1, keepdims=True))
        bad = bad / mg.sqrt(mg.sum(bad**2, axis=1, keepdims=True))
        sim_good = mg.sum(good * captions, axis=1)
        sim_bad = mg.sum(bad * captions, axis=1)
        loss = margin_ranking_loss(sim_good, sim_bad, 1, MARGIN)
        float(np.mean(sim_good.data > sim_bad.data))  # the accuracy, computed as training does
        loss.backward()
        optim.step()
        losses.append(loss.item())
    return float(np.mean(losses))


class NumpyModel:
    """Weight, bias and their SGD momentum as plain arrays."""

    def __init__(self, model: Autoembedder):
        self.weight = model.dense.weight.data.copy()
        self.bias = model.dense.bias.data.copy()
        self.weight_moment = np.zeros_like(self.weight)
        self.bias_moment = np.zeros_like(self.bias)


def numpy_epoch(m: NumpyModel, table, rng, eps: float = 1e-12):
    """The same model and update with gradients derived by hand, in NumPy only."""
    bad_rows = table.sample_bad_rows(rng)
    order = rng.permutation(len(table))
    losses = []
    for start in range(0, len(order), BATCH):
        batch = order[start : start + BATCH]
        n = len(batch)
        captions = table.caption_vectors[batch]
        x = np.concatenate([table.descriptors[table.good_rows[batch]], table.descriptors[bad_rows[batch]]])
        c = np.concatenate([captions, captions])
        # forward: h = xW + b, u = h / (|h| + eps), s = u . c
        h = x @ m.weight + m.bias
        norm = np.sqrt(np.einsum("ij,ij->i", h, h))[:, None]
        u = h / (norm + eps)
        s = np.einsum("ij,ij->i", u, c)
        hinge = MARGIN - (s[:n] - s[n:])
        active = (hinge > 0).astype(np.float32)
        losses.append(float(np.mean(np.maximum(hinge, 0))))
        float(np.mean(s[:n] > s[n:]))  # the accuracy, computed as training does
        # backward: dL/ds = -1/n (good), +1/n (bad) where the hinge is active
        ds = np.concatenate([-active, active]) / n
        du = ds[:, None] * c
        # d(h / (|h| + eps)) = du / (|h| + eps) - h (h . du) / (|h| (|h| + eps)^2)
        dh = du / (norm + eps) - h * (np.einsum("ij,ij->i", h, du)[:, None] / (norm * (norm + eps) ** 2))
        grad_weight, grad_bias = x.T @ dh, dh.sum(axis=0, keepdims=True)
        # SGD with momentum, exactly as mynn.optimizers.SGD: v = mu v - lr g; p += v
        for p, v, g in ((m.weight, m.weight_moment, grad_weight), (m.bias, m.bias_moment, grad_bias)):
            v *= MOMENTUM
            v -= LEARNING_RATE * g
            p += v
    return float(np.mean(losses))


def fresh(seed: int = 0):
    model = Autoembedder(DIM, seed=seed)
    return model, SGD(model.parameters, learning_rate=LEARNING_RATE, momentum=MOMENTUM)


def check_same_model(n_steps: int = 5) -> dict:
    """The three loops, from one init and with the same batches, reach the same weights."""
    table = synthetic_table(n_steps * BATCH, 50, seed=1)
    results = {}
    model, optim = fresh()
    library_epoch(model, optim, table, np.random.default_rng(3))
    results["library"] = model.dense.weight.data, model.dense.bias.data
    model, optim = fresh()
    obvious_mygrad_epoch(model, optim, table, np.random.default_rng(3))
    results["obvious"] = model.dense.weight.data, model.dense.bias.data
    numpy_model = NumpyModel(fresh()[0])
    numpy_epoch(numpy_model, table, np.random.default_rng(3))
    results["numpy"] = numpy_model.weight, numpy_model.bias
    start = NumpyModel(fresh()[0]).weight
    check = {"moved": float(np.abs(results["numpy"][0] - start).max())}
    for name in ("library", "obvious"):
        pairs = list(zip(results[name], results["numpy"]))
        check[name] = all(np.allclose(a, b, rtol=1e-4, atol=1e-6) for a, b in pairs)
        check[name + " max diff"] = max(float(np.abs(a - b).max()) for a, b in pairs)
    return check


def time_training(n_triples: int, n_images: int, repeats: int) -> dict:
    """Wall and CPU seconds of whole epochs of the three loops, interleaved, one BLAS thread."""
    table = synthetic_table(n_triples, n_images)
    loops = {
        "NumPy, hand-derived gradients": lambda rng: numpy_epoch(NumpyModel(fresh()[0]), table, rng),
        "semsearch train_epoch": lambda rng: library_epoch(*fresh(), table, rng),
        "MyGrad written the obvious way": lambda rng: obvious_mygrad_epoch(*fresh(), table, rng),
    }
    wall = {name: [] for name in loops}
    cpu = {name: [] for name in loops}
    with threadpool_limits(limits=1, user_api="blas"):
        for r in range(repeats):
            names = list(loops)[r % 3 :] + list(loops)[: r % 3]  # rotate the order each repetition
            for name in names:
                rng = np.random.default_rng(r)
                start, start_cpu = time.perf_counter(), time.thread_time()
                loops[name](rng)
                cpu[name].append(time.thread_time() - start_cpu)
                wall[name].append(time.perf_counter() - start)
    return {"wall": wall, "cpu": cpu}


def time_losses(n_triples: int, n_images: int, repeats: int, batch_size: int = BATCH) -> dict:
    """Wall seconds of one ``train_epoch`` per loss (triple first), interleaved, one BLAS thread."""
    table = synthetic_table(n_triples, n_images)
    configs = {loss: CONFIG.replace(loss=loss, batch_size=batch_size, warmup_epochs=0)
               for loss in ("triple", "vse0", "vse++", "infonce")}  # vse++ timed past its warm-up
    wall = {loss: [] for loss in configs}
    with threadpool_limits(limits=1, user_api="blas"):
        for r in range(repeats):
            for loss in list(configs)[r % 4 :] + list(configs)[: r % 4]:
                rng, (model, optim) = np.random.default_rng(r), fresh()
                triples = make_triples(table.split, seed=rng)
                start = time.perf_counter()
                train_epoch(model, optim, triples, table.caption_vectors, rng, History(), configs[loss], 5)
                wall[loss].append(time.perf_counter() - start)
    return wall


# --------------------------------------------------------------------------- search
def time_blocks(functions: dict, repeats: int, pause: float = 0.2) -> dict:
    """Seconds per call of each function, alternating; a pause before each lets the other
    library's idle worker threads (OpenMP, OpenBLAS) stop spinning on the cores."""
    times = {name: [] for name in functions}
    for r in range(repeats):
        for name in list(functions)[r % 2 :] + list(functions)[: r % 2]:
            time.sleep(pause)
            start = time.perf_counter()
            functions[name]()
            times[name].append(time.perf_counter() - start)
    return times


def single_query_times(function, queries) -> float:
    """Median seconds of one call per query."""
    times = []
    for q in queries:
        start = time.perf_counter()
        function(q)
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def same_as_faiss(ids, scores, faiss_rows, faiss_scores, database_ids, tolerance=1e-6):
    """(positions that differ, of which scores do not tie): a swap of equal scores is no error."""
    differ = ids != database_ids[faiss_rows]
    untied = differ & (np.abs(scores - faiss_scores) > tolerance)
    return int(differ.sum()), int(untied.sum())


def time_search(n_images: int, n_queries: int, repeats: int, text: bool) -> dict:
    """Rows of the search table, one column per thread setting: one thread each, then defaults."""
    import faiss

    rng = np.random.default_rng(1)
    database = ImageDatabase(np.arange(1, n_images + 1), unit_rows(rng.standard_normal((n_images, 50))))
    queries = unit_rows(rng.standard_normal((n_queries, 50)))
    index = faiss.IndexFlatIP(database.dim)
    index.add(database.vectors)
    phrase = "a dog catching a frisbee on the beach"
    if text:
        database.text_encoder = synthetic_text_encoder(rng)
    default_faiss = faiss.omp_get_max_threads()
    table = {}
    for threads in (1, None):
        column = "1 thread" if threads else f"default ({_blas_threads()} BLAS, {default_faiss} OpenMP)"
        faiss.omp_set_num_threads(threads or default_faiss)
        with threadpool_limits(limits=threads, user_api="blas"):
            ids, scores = database.query(queries, k=10)
            faiss_scores, faiss_rows = index.search(queries, 10)
            single = {"semsearch": [], "faiss": [], "se_text": [], "text": []}
            one_query = {"semsearch": lambda q: database.query(q, k=10), "faiss": lambda q: index.search(q[None], 10)}
            if text:
                one_query["se_text"] = lambda q: database.text_encoder(phrase)
                one_query["text"] = lambda q: database.query(phrase, k=10)
            for _ in range(repeats):  # blocks of 200 single queries, alternating
                for name, f in one_query.items():
                    time.sleep(0.2)
                    single[name].append(single_query_times(f, queries[:200]))
            one_ids, one_scores = map(np.stack, zip(*(database.query(q, k=10) for q in queries[:200])))
            batch = time_blocks({"semsearch": lambda: database.query(queries, k=10),
                                 "faiss": lambda: index.search(queries, 10)}, repeats)
        lib, ref = np.array(batch["semsearch"]), np.array(batch["faiss"])
        one, one_faiss = np.array(single["semsearch"]), np.array(single["faiss"])
        table[column] = {
            "one": np.median(one), "one_faiss": np.median(one_faiss), "one_ratio": float(np.median(one / one_faiss)),
            "se_text": np.median(single["se_text"]) if text else np.nan,
            "text": np.median(single["text"]) if text else np.nan,
            "text_ratio": float(np.median(np.array(single["text"]) / one)) if text else np.nan,
            "batch": np.median(lib) / n_queries, "batch_faiss": np.median(ref) / n_queries,
            "ratio": float(np.median(lib / ref)),
            "differ": same_as_faiss(ids, scores, faiss_rows, faiss_scores, database.keys),
            "one_differ": same_as_faiss(one_ids, one_scores, faiss_rows[:200], faiss_scores[:200], database.keys),
        }
    faiss.omp_set_num_threads(default_faiss)
    return table


def _blas_threads() -> int:
    from threadpoolctl import threadpool_info

    return max((info["num_threads"] for info in threadpool_info() if info["user_api"] == "blas"), default=1)


def synthetic_text_encoder(rng):
    """se_text fitted on 20,000 captions of 10 random common GloVe words (loads GloVe, ~2 s)."""
    from semsearch.glove import load_glove
    from semsearch.text import TextEmbedder

    glove = load_glove()
    words = [w for w in glove.index_to_key[:5000] if w.isalpha()]
    return TextEmbedder.fit([" ".join(rng.choice(words, size=10)) for _ in range(20_000)], glove)


# --------------------------------------------------------------------------- report
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--triples", type=int, default=COCO_TRAIN_CAPTIONS, help="training triples per epoch")
    parser.add_argument("--repeats", type=int, default=3, help="epochs timed per training loop")
    parser.add_argument("--images", type=int, default=COCO_DATABASE_IMAGES, help="database size for search")
    parser.add_argument("--queries", type=int, default=1000, help="queries in the batch")
    parser.add_argument("--search-repeats", type=int, default=7)
    parser.add_argument("--no-text", action="store_true", help="skip the text query (loads GloVe, ~2 s)")
    parser.add_argument("--skip-training", action="store_true")
    parser.add_argument("--skip-search", action="store_true")
    parser.add_argument("--skip-losses", action="store_true", help="skip the epoch time of each loss")
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    print(f"load average at start: {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")

    if not args.skip_training:
        n_images = max(2, round(args.triples * COCO_TRAIN_IMAGES / COCO_TRAIN_CAPTIONS))
        check = check_same_model()
        print(f"\n1. Training: one epoch, {args.triples:,} triples over {n_images:,} images, batch {BATCH}, D = {DIM}, "
              f"one BLAS thread, {args.repeats} epochs per loop interleaved")
        print(f"   same model: 5 steps from one init on the same batches; weights allclose to NumPy's: "
              f"semsearch {check['library']} (max diff {check['library max diff']:.1e}), obvious MyGrad "
              f"{check['obvious']} ({check['obvious max diff']:.1e}); the weights moved by up to {check['moved']:.1e}")
        times = time_training(args.triples, n_images, args.repeats)
        wall, cpu = times["wall"], times["cpu"]
        base_wall, base_cpu = np.array(next(iter(wall.values()))), np.array(next(iter(cpu.values())))
        steps = -(-args.triples // BATCH)
        print(f"   {'loop':32s} {'epoch s':>8s} {'us/step':>8s} {'x NumPy':>8s} {'x NumPy (CPU time)':>19s}")
        for name in wall:
            w, c = np.array(wall[name]), np.array(cpu[name])
            print(f"   {name:32s} {np.median(w):8.2f} {np.median(w) / steps * 1e6:8.0f} "
                  f"{np.median(w / base_wall):8.2f} {np.median(c / base_cpu):19.2f}")
        ratio = float(np.median(np.array(wall["semsearch train_epoch"]) / base_wall))
        print(f"   target <= 1.2x NumPy: {'met' if ratio <= 1.2 else 'NOT met'} ({ratio:.2f}x; "
              f"per-epoch ratios {', '.join(f'{x:.2f}' for x in np.array(wall['semsearch train_epoch']) / base_wall)})")

    if not args.skip_losses:
        n_images = max(2, round(args.triples * COCO_TRAIN_IMAGES / COCO_TRAIN_CAPTIONS))
        print(f"\n1b. One epoch of each loss, {args.triples:,} captions over {n_images:,} images, D = {DIM}, "
              f"one BLAS thread, {args.repeats} epochs per loss interleaved")
        print(f"   {'loss':10s}" + "".join(f"{'batch ' + str(b) + ' s':>14s}{'x triple':>10s}" for b in (BATCH, 256)))
        columns = [time_losses(args.triples, n_images, args.repeats, b) for b in (BATCH, 256)]
        for loss in columns[0]:
            cells = ""
            for wall in columns:
                times, base = np.array(wall[loss]), np.array(wall["triple"])
                cells += f"{np.median(times):14.2f}{np.median(times / base):10.2f}"
            print(f"   {loss:10s}{cells}")

    if not args.skip_search:
        table = time_search(args.images, args.queries, args.search_repeats, not args.no_text)
        columns = list(table)
        print(f"\n2. One query over {args.images:,} unit 50-d float32 vectors, k = 10, median of "
              f"{args.search_repeats} blocks of 200 each, interleaved, ms")
        print(f"   {'':44s}" + "".join(f"{c:>28s}" for c in columns))
        for key, label in (("one", "semsearch ImageDatabase.query(vector)"), ("one_faiss", "faiss IndexFlatIP.search(vector)"),
                           ("se_text", 'se_text("a dog catching a frisbee ...")'), ("text", "semsearch query(that text)")):
            if not args.no_text or key not in ("se_text", "text"):
                print(f"   {label:44s}" + "".join(f"{table[c][key] * 1e3:28.3f}" for c in columns))
        print(f"   {'ratio semsearch / faiss (per block pair)':44s}" + "".join(f"{table[c]['one_ratio']:28.2f}" for c in columns))
        differ = ["%d (%d)" % table[c]["one_differ"] for c in columns]
        print(f"   {'top-10 ids unlike faiss (of them untied)':44s}" + "".join(f"{d:>28s}" for d in differ))
        print("   target < 1 ms: " + ", ".join(f"{c}: {'met' if table[c]['one'] < 1e-3 else 'NOT met'}" for c in columns))
        print(f"   target <= 1x faiss at 1 thread: {'met' if table['1 thread']['one_ratio'] <= 1 else 'NOT met'}")
        if not args.no_text:
            print(f"   {'ratio text query / vector query':44s}" + "".join(f"{table[c]['text_ratio']:28.2f}" for c in columns))
            print("   target text <= 1.2x vector: " + ", ".join(f"{c}: {'met' if table[c]['text_ratio'] <= 1.2 else 'NOT met'}"
                                                          for c in columns))
        print(f"\n3. A batch of {args.queries:,} queries, k = 10, median of {args.search_repeats} alternating runs, ms per query")
        print(f"   {'':44s}" + "".join(f"{c:>28s}" for c in columns))
        for key, label in (("batch", "semsearch ImageDatabase.query(queries)"), ("batch_faiss", "faiss IndexFlatIP.search(queries)")):
            print(f"   {label:44s}" + "".join(f"{table[c][key] * 1e3:28.3f}" for c in columns))
        print(f"   {'ratio semsearch / faiss':44s}" + "".join(f"{table[c]['ratio']:28.2f}" for c in columns))
        differ = ["%d (%d)" % table[c]["differ"] for c in columns]
        print(f"   {'top-10 ids unlike faiss (of them untied)':44s}" + "".join(f"{d:>28s}" for d in differ))
        print("   target <= 1x faiss: " + ", ".join(f"{c}: {'met' if table[c]['ratio'] <= 1 else 'NOT met'}" for c in columns))
    print(f"\nload average at end: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
