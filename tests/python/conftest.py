"""Fixtures shared by the tests: the trace-rule check of every trace a test writes, and the
trnsim.torch helpers."""
import os

import pytest


@pytest.fixture(autouse=True)
def _traces_keep_the_rules(request):
    """After each test that used tmp_path: every Chrome trace it left there (a .json file with
    "traceEvents") keeps the trace rules of docs/profile.md (slices on a track nest, tracks
    are named, flow arrows pair up inside slices)."""
    # Taken before the test: tmp_path is torn down before this fixture's teardown runs.
    tmp = request.getfixturevalue("tmp_path") if "tmp_path" in request.fixturenames else None
    yield
    if tmp is None:
        return
    from trnsim import _trnsim

    for path in tmp.rglob("*.json"):
        with open(path, "rb") as f:
            head = f.read(4096)
        is_trace = b'"traceEvents"' in head or (head.lstrip().startswith(b"[") and b'"ph"' in head)
        if not is_trace:
            continue
        try:
            _trnsim.profile.check_trace(path.read_text(encoding="utf-8", errors="replace"))
        except ValueError as e:
            pytest.fail(f"{path.name} breaks the trace rules: {e}")


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
