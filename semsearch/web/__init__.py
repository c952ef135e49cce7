"""``semsearch serve``: a local web page to search a database with (``pip install 'semsearch[web]'``).

- :mod:`semsearch.web.app`: :func:`create_app`, the FastAPI app (JSON API, page, thumbnails),
  assembled from :mod:`~semsearch.web.context` (what the routes share, the request checks),
  :mod:`~semsearch.web.errors` (one-line JSON errors) and one module per group of routes:
  :mod:`~semsearch.web.search_api`, :mod:`~semsearch.web.words_api`,
  :mod:`~semsearch.web.upload_api`, :mod:`~semsearch.web.files_api`;
- :mod:`semsearch.web.images`: bounded image decoding, thumbnails, COCO image files;
- :mod:`semsearch.web.serve`: the ``serve`` subcommand (``add_parser``, ``run``).

Importing this package imports neither FastAPI nor uvicorn; :func:`create_app` does.
"""
