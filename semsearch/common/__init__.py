"""Small helpers shared by the whole package, one job each.

``files`` (atomic saves, ``.npz`` formats), ``checks`` (validating ``k``, ids, lists of
texts), ``vectors`` (unit rows), ``keys`` (COCO ids from file names), ``images`` (opening
image files safely), ``safe_pickle`` (reading pickles without running code), ``pooled``
(global average pooling for torch backbones).
"""
