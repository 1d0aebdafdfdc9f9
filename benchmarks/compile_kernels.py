"""Build the fused LIF kernels for Hopper (sm_90) without a GPU, and show what the compiler made.

    python benchmarks/compile_kernels.py            # every variant: 3 dtypes × resets × options × surrogates
    python benchmarks/compile_kernels.py --quick    # bf16 and fp32, one forward and one backward each

Triton compiles to PTX and assembles a cubin with the ptxas that ships in its wheel, so this catches
what the CPU interpreter cannot (type errors, constexpr misuse) and shows whether the loads and
stores are 16-byte vectors and whether the forward stayed free of FMA contraction (needed for spikes
bit-equal to the torch reference). Run it with TRITON_INTERPRET unset.
"""

from __future__ import annotations

import argparse
import itertools
import os
import sys

if os.environ.get("TRITON_INTERPRET", "0") == "1":
    sys.exit("unset TRITON_INTERPRET: the interpreter replaces the compiler this script exercises")

import triton  # noqa: E402
from triton.backends.compiler import GPUTarget  # noqa: E402
from triton.compiler import ASTSource  # noqa: E402

from spikedistill.neurons.kernels import lif_triton, ops  # noqa: E402

HOPPER = GPUTarget("cuda", 90, 32)


def aligned(*indices: int) -> dict:
    """What the launcher infers for torch tensors and sizes divisible by 16 (pointers, N, step stride)."""
    return {(i,): [["tt.divisibility", 16]] for i in indices}


def compile_forward(dtype: str, soft_reset: bool, decay_input: bool, variant: str = "plain"):
    """``variant``: "plain" (the LIF: writes spikes and u), "bn" (BatchNorm and a residual folded in,
    writes spikes only) or "bn_recompute" (the same, writing u only: the backward pass's recompute)."""
    folded = variant != "plain"
    signature = dict(x_ptr=f"*{dtype}", residual_ptr=f"*{dtype}", weight_ptr="*fp32", bias_ptr="*fp32",
                     mean_ptr="*fp32", invstd_ptr="*fp32",
                     spike_ptr=f"*{dtype}", u_ptr=f"*{dtype}", T="i32", N="i32", stride_xt="i32", stride_rt="i32",
                     C="i32", channel_stride="i32",
                     leak="fp32", threshold="fp32", v_reset="fp32", v_rest="fp32", no_spike_ceiling="fp32",
                     SOFT_RESET="constexpr", DECAY_INPUT="constexpr", AFFINE="constexpr", HAS_WEIGHT="constexpr",
                     HAS_BIAS="constexpr", RESIDUAL="constexpr", STORE_SPIKES="constexpr", STORE_U="constexpr",
                     BLOCK="constexpr")
    constants = dict(SOFT_RESET=soft_reset, DECAY_INPUT=decay_input, AFFINE=folded, HAS_WEIGHT=folded,
                     HAS_BIAS=folded, RESIDUAL=folded,
                     STORE_SPIKES=variant != "bn_recompute", STORE_U=variant != "bn", BLOCK=ops.BLOCK_SIZE)
    source = ASTSource(lif_triton.lif_forward_kernel, signature, constexprs=constants,
                       attrs=aligned(0, 1, 2, 3, 4, 5, 6, 7, 9, 10, 11))
    return triton.compile(source, target=HOPPER, options=dict(num_warps=ops.NUM_WARPS, enable_fp_fusion=False))


def compile_backward(dtype: str, soft_reset: bool, decay_input: bool, detach_reset: bool, surrogate: int):
    signature = dict(grad_spike_ptr=f"*{dtype}", u_ptr=f"*{dtype}", grad_x_ptr=f"*{dtype}", T="i32", N="i32",
                     leak="fp32", threshold="fp32", v_reset="fp32", sg_a="fp32", sg_b="fp32",
                     SOFT_RESET="constexpr", DECAY_INPUT="constexpr", DETACH_RESET="constexpr",
                     SURROGATE="constexpr", BLOCK="constexpr")
    constants = dict(SOFT_RESET=soft_reset, DECAY_INPUT=decay_input, DETACH_RESET=detach_reset,
                     SURROGATE=surrogate, BLOCK=ops.BLOCK_SIZE)
    source = ASTSource(lif_triton.lif_backward_kernel, signature, constexprs=constants, attrs=aligned(0, 1, 2, 4))
    return triton.compile(source, target=HOPPER, options=dict(num_warps=ops.NUM_WARPS, enable_fp_fusion=True))


def describe(name: str, compiled, per_channel_loads: int = 0) -> tuple[bool, int]:
    """Print the global memory accesses; True when all but ``per_channel_loads`` of them (the gathers of
    BatchNorm's per-channel γ, β, mean and invstd, once per program before the time loop) are vectors."""
    ptx = compiled.asm["ptx"]
    memory = [line.split()[1] if line.split()[0].startswith("@") else line.split()[0]
              for line in ptx.splitlines() if "ld.global" in line or "st.global" in line]
    scalar = [op for op in memory if ".v4." not in op and ".v2." not in op]
    vectorized = bool(memory) and len(scalar) <= per_channel_loads
    fmas = ptx.count("fma.rn")
    print(f"{name}: {len(compiled.asm['cubin'])} B cubin, global accesses {sorted(set(memory))}, FMAs {fmas}")
    return vectorized, fmas


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    dtypes = ("bf16", "fp32") if args.quick else ("bf16", "fp16", "fp32")
    flags = (False,) if args.quick else (False, True)
    surrogates = (1,) if args.quick else range(4)
    vectorized, forward_fmas = True, 0
    for dtype in dtypes:
        for soft_reset, decay_input in itertools.product(flags, repeat=2):
            ok, fmas = describe(f"forward {dtype} soft={soft_reset} decay_input={decay_input}",
                                compile_forward(dtype, soft_reset, decay_input))
            vectorized, forward_fmas = vectorized and ok, forward_fmas + fmas
            for variant in ("bn", "bn_recompute"):
                ok, fmas = describe(f"forward {variant} {dtype} soft={soft_reset} decay_input={decay_input}",
                                    compile_forward(dtype, soft_reset, decay_input, variant),
                                    per_channel_loads=4 * ops.BLOCK_SIZE // (32 * ops.NUM_WARPS))
                vectorized, forward_fmas = vectorized and ok, forward_fmas + fmas
            for detach_reset, surrogate in itertools.product(flags, surrogates):
                ok, _ = describe(f"backward {dtype} soft={soft_reset} decay_input={decay_input} "
                                 f"detach={detach_reset} surrogate={surrogate}",
                                 compile_backward(dtype, soft_reset, decay_input, detach_reset, surrogate))
                vectorized = vectorized and ok
    print(f"16-byte vectors: {'yes' if vectorized else 'no'}; forward FMAs: {forward_fmas}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
