"""trnsim.nki.typing: the annotation names NKI kernels import (``nt.tensor``, ...).

They only annotate; nothing checks them at trace time.
"""


class _Annot:
    def __init__(self, name):
        self.name = name

    def __getitem__(self, item):
        return self

    def __call__(self, *a, **k):
        return self

    def __repr__(self):
        return f"nki.typing.{self.name}"


tensor = _Annot("tensor")
mutable_tensor = _Annot("mutable_tensor")
scalar = _Annot("scalar")
tile = _Annot("tile")
