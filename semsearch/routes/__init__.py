"""Other retrieval routes beside the course's design, each in its own module.

==================  ================================================================
``baselines``       retrieval by reading the images' own captions (one-hot, TF-IDF, GloVe)
``captioner``       a GRU captioner: caption every image, then search the captions
``classifier``      ImageNet labels from the backbone's own classifier head
``minilm``          all-MiniLM-L6-v2 sentence embeddings instead of GloVe-IDF
``tags``            image -> tags and word -> words (nearest GloVe words)
``similar``         image -> image: nearest images by descriptor or embedding
``explain``         why an image matched a query: each word's share of the score
``ann``             approximate top-k with hnswlib's HNSW (large databases)
``submission``      ranked-submission CSVs: write, check, Recall@K and mAP
``benchmark``       the adapter the course's CogWorks benchmark loads
==================  ================================================================
"""
