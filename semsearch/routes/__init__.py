"""Other retrieval routes beside the course's design, each in its own module.

==================  ================================================================
``baselines``       retrieval by reading the images' own captions (one-hot, TF-IDF, GloVe)
``captioner``       a GRU captioner: caption every image, then search the captions
``classifier``      ImageNet labels from the backbone's own classifier head
``torch_weights``   a .pth state dict read with NumPy (no torch, no code from the file)
``tagger``          image tags: confident ImageNet labels merged with GloVe words
``image_tags``      a database's tags, and search restricted to the images carrying a tag
``tag_quality``     tags measured against the images' own captions
``minilm``          all-MiniLM-L6-v2 sentence embeddings instead of GloVe-IDF
``tags``            image -> words and word -> words (nearest GloVe words)
``similar``         image -> image: nearest images by descriptor or embedding
``explain``         why an image matched a query: each word's share of the score
``feedback``        more like this, less like this: Rocchio relevance feedback
``ann``             approximate top-k with hnswlib's HNSW (large databases)
``submission``      ranked-submission CSVs: write, check, Recall@K and mAP
``benchmark``       the adapter the course's CogWorks benchmark loads
==================  ================================================================
"""
