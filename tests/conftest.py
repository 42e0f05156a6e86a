"""Test configuration: one torch thread (tests run with OMP_NUM_THREADS=1 on 2 cores)."""

import os
import warnings

import pytest

os.environ.setdefault("OMP_NUM_THREADS", "1")


def pytest_configure(config):
    import torch

    # Tests own the process, so pinning threads here is fine (library code never does).
    torch.set_num_threads(1)


def _has_cuda():
    try:
        import torch
    except ImportError:  # pragma: no cover
        return False
    return torch.cuda.is_available()


def _has_dask():
    try:
        import dask.distributed  # noqa: F401
    except ImportError:
        return False
    return True


def pytest_collection_modifyitems(config, items):
    skip_gpu = pytest.mark.skip(reason="needs a CUDA device")
    skip_dask = pytest.mark.skip(reason="needs dask.distributed")
    cuda, dask = _has_cuda(), _has_dask()
    for item in items:
        if item.get_closest_marker("gpu") and not cuda:
            item.add_marker(skip_gpu)
        if item.get_closest_marker("dask") and not dask:
            item.add_marker(skip_dask)


@pytest.fixture
def no_warnings():
    """Fail the test on any warning raised inside the block."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        yield
