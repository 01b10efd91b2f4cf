"""Fixtures shared by the trnsim.torch tests."""
import os

import pytest


@pytest.fixture(scope="module")
def module_cache_dir(tmp_path_factory):
    """TRNSIM_CACHE_DIR set to a fresh folder for the module's tests, restored after."""
    old = os.environ.get("TRNSIM_CACHE_DIR")
    os.environ["TRNSIM_CACHE_DIR"] = str(tmp_path_factory.mktemp("trnsim_cache"))
    yield
    if old is None:
        os.environ.pop("TRNSIM_CACHE_DIR", None)
    else:
        os.environ["TRNSIM_CACHE_DIR"] = old


@pytest.fixture
def ir_texts(monkeypatch):
    """The IR text of every graph trnsim.torch compiles during the test."""
    torch = pytest.importorskip("torch")
    from trnsim.torch import _compile

    texts = []
    real = _compile.serialize

    def spy(*args, **kwargs):
        sg = real(*args, **kwargs)
        texts.append(sg.text)
        return sg

    monkeypatch.setattr(_compile, "serialize", spy)
    torch._dynamo.reset()
    yield texts
    torch._dynamo.reset()
