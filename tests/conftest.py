import os
from pathlib import Path

import pytest
import torch

# @triton.jit reads TRITON_INTERPRET when a kernel module is first imported, and any test may import
# it first (through the LIF's backend="auto"), so set it here, before every test module. Without a
# GPU the kernels then run, exactly, in Triton's CPU interpreter.
if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")

torch.set_num_threads(min(2, torch.get_num_threads()))

DATA_ROOT = Path(os.environ.get("SPIKEDISTILL_DATA", Path(__file__).resolve().parents[1].parent / "shared" / "data"))


@pytest.fixture
def data_root(monkeypatch) -> Path:
    """The real data, also as ``$SPIKEDISTILL_DATA`` for the test (recipes without a data root read it), so a
    test that found the data beside the checkout trains on it whether or not the variable was set."""
    if not DATA_ROOT.exists():
        pytest.skip(f"shared data not found at {DATA_ROOT} (set SPIKEDISTILL_DATA)")
    monkeypatch.setenv("SPIKEDISTILL_DATA", str(DATA_ROOT))
    return DATA_ROOT


@pytest.fixture(scope="session")
def decode_cache(tmp_path_factory):
    """One fresh JPEG-decode cache for the whole session: the first CIFAR-10 JPEG test decodes, the rest
    re-use it, and nothing is written to the user's ~/.cache."""
    folder = tmp_path_factory.mktemp("decode-cache")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SPIKEDISTILL_CACHE", str(folder))
        yield folder


@pytest.fixture
def one_thread():
    """Tiny training runs are faster, and as reproducible, on one thread."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
