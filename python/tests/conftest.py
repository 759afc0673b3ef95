import os

import numpy as np
import pytest

import ferry


@pytest.fixture(scope="session")
def ctx():
    c = ferry.Context("cpu")
    ferry.set_default_context(c)
    yield c


@pytest.fixture(scope="session")
def ocl_ctx():
    """An OpenCL context, or a visible skip (never another backend)."""
    try:
        c = ferry.Context("opencl")
    except ferry.FerryError as e:
        pytest.skip(f"opencl unavailable: {e}")
    yield c


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


def cora_prefix():
    repo = os.environ.get("FERRY_REPO",
                          os.path.join(os.path.dirname(__file__), "..", ".."))
    return os.environ.get("FERRY_CORA", os.path.normpath(os.path.join(
        repo, "..", "shared", "data", "graphs", "cora", "cora")))


def poison(a):
    """Fill an output with NaN (floats) or a sentinel, so that an element
    the library does not write is caught."""
    if a.dtype.kind == "f":
        a.fill(np.nan)
    else:
        a.fill(-7)
    return a
