"""How descriptors are computed: the CNNs behind :mod:`semsearch.features` and :mod:`semsearch.backbones`.

``preprocessing`` (resize, crop, normalise, in NumPy: what the network is fed), ``onnx_backbone``
(EfficientNet-Lite0 on ONNX Runtime, no torch; its graph is written by ``effnet_graph`` with the
small protobuf writer ``onnx_proto``), ``torch_backbones`` (ResNet18 and EfficientNet-Lite0 in
torch, extra ``[features]``; ``pooled``: their pooled outputs), ``distributed`` (the same on
Ray Data actors, extra ``[ray]``).
"""
