"""The fused Triton kernels against their torch references on CUDA tensors: the parity matrix of the GPU
check (``benchmarks/gpu_check.py``), one test per case. Run them on a GPU machine with ``pytest -m cuda``;
elsewhere they skip (``tests/test_kernel_lif.py`` and ``tests/test_bn_lif.py`` check the same kernels on
the CPU under Triton's interpreter)."""

import pytest
import torch

from helpers import load_script

gpu_check = load_script("benchmarks/gpu_check.py", "gpu_check_cuda")
CASES = gpu_check.parity_cases(smoke=False)


def test_the_matrix_covers_every_surrogate_layout_and_dtype():
    names = [case.name for case in CASES]
    assert len(names) == len(set(names)) == 2 * 3 * 4 * 5 + 2 * 2 * 2
    for word in ("sigmoid", "atan", "triangle", "rectangular", "channels_last", "expanded", "bfloat16", "bn_lif"):
        assert any(word in name for name in names), word


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU (pytest -m cuda on a GPU machine)")
@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_the_fused_kernel_matches_its_reference_on_cuda(case):
    pytest.importorskip("triton")
    result = case.check("cuda")
    assert result["spikes_equal"], f"{case.name}: spikes differ"
    assert result["passed"], f"{case.name}: input-gradient error {result['grad_rel_error']:.2e} over its tolerance"
