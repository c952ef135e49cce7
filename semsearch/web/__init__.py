"""``semsearch serve``: a local web page to search a database with (``pip install 'semsearch[web]'``).

- :mod:`semsearch.web.app`: :func:`create_app`, the FastAPI app (JSON API, page, thumbnails);
- :mod:`semsearch.web.images`: bounded image decoding, thumbnails, COCO image files;
- :mod:`semsearch.web.serve`: the ``serve`` subcommand (``add_parser``, ``run``).

Importing this package imports neither FastAPI nor uvicorn; :func:`create_app` does.
"""
