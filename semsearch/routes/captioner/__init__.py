"""A caption generator in MyGrad: image descriptor -> words, and retrieval by generated captions.

The "Show and Tell" shape (Vinyals et al. 2015) with a GRU: the pooled descriptor holds no
spatial grid to attend over, so the image enters once, as the decoder's initial state.

    s_0 = tanh(x W_img + b_img)                    x: the descriptor, centred and scaled (D,)
    s_t = GRU(E[w_{t-1}], s_{t-1})                 mygrad.nnet.layers.gru, hidden size H
    p(w_t | w_<t, image) = softmax(s_t W_out + b_out)

The word embeddings ``E`` (V, 50) start from GloVe-50 for the caption vocabulary. Training
is teacher forcing: the true previous word is the input, and the loss is
``mygrad.nnet.losses.softmax_crossentropy`` over every real (non-padding) next word,
minimised with MyNN's Adam. Decoding is greedy or by beam search, and stops at ``<end>`` or
after ``max_length`` words.

MyGrad's ``gru`` treats its initial state as a constant; :func:`state_gru` is the same
operation with ``s_0`` as an input that receives its gradient (one more step of the GRU's
own backward formula), so the image map ``W_img`` learns.

**Retrieval route** (:func:`generated_caption_scores`): generate a caption ``T_k`` for every
database image, then rank images for a query ``Q`` by ``sim(Q, T_k)`` with the caption
baselines' vectors (:func:`semsearch.routes.baselines.caption_vectors`: one-hot, TF-IDF or
``se_text``). **Quality** (:func:`caption_quality`): BLEU-4 and CIDEr of generated
captions against the human ones (``pycocoevalcap``; no Java needed for these two).

Modules: :mod:`~semsearch.routes.captioner.vocabulary` (:class:`CaptionVocabulary`),
:mod:`~semsearch.routes.captioner.gru` (:func:`state_gru`),
:mod:`~semsearch.routes.captioner.model` (:class:`CaptionGenerator`),
:mod:`~semsearch.routes.captioner.training` (:func:`train_captioner`, :func:`glove_embeddings`),
:mod:`~semsearch.routes.captioner.retrieval` (:func:`generated_caption_scores`),
:mod:`~semsearch.routes.captioner.quality` (:func:`caption_quality`); every public name is
importable from ``semsearch.routes.captioner``.

Needs ``pip install 'semsearch[captioner]'`` (numba, which MyGrad's GRU is compiled with;
pycocoevalcap for the quality scores).

Example
-------
>>> model, losses = train_captioner(data, train_ids, epochs=30, progress=True)    # doctest: +SKIP
>>> model.generate(data.descriptors.vectors_of([139]), beam=3)                     # doctest: +SKIP
['a kitchen with a table and a table']
>>> print(generated_caption_scores(model, data, val_ids, method="tfidf"))          # doctest: +SKIP
"""
from semsearch.routes.captioner.gru import state_gru
from semsearch.routes.captioner.model import FORMAT, PARAMETER_NAMES, CaptionGenerator
from semsearch.routes.captioner.quality import caption_quality
from semsearch.routes.captioner.retrieval import generated_caption_scores
from semsearch.routes.captioner.training import glove_embeddings, train_captioner
from semsearch.routes.captioner.vocabulary import END, PAD, SPECIALS, START, UNK, CaptionVocabulary

__all__ = [
    "END", "FORMAT", "PAD", "PARAMETER_NAMES", "SPECIALS", "START", "UNK",
    "CaptionGenerator", "CaptionVocabulary", "caption_quality", "generated_caption_scores",
    "glove_embeddings", "state_gru", "train_captioner",
]
