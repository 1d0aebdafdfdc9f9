"""Pictures of a full-range report: top-1 and energy against timesteps, and the early-exit curve.

Matplotlib is imported lazily with the Agg backend, so evaluation works without a display and without
matplotlib until a picture is asked for.
"""

from __future__ import annotations

from pathlib import Path

from ..errors import SpikeDistillError


def _pyplot():
    try:
        import matplotlib
    except ImportError:
        raise SpikeDistillError("drawing needs matplotlib; pip install 'spikedistill[demo]' or pass "
                                "--no-plot") from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(plt, fig, path: str | Path) -> Path:
    import io

    from ..io import atomic_write_bytes

    path = Path(path)
    buffer = io.BytesIO()  # drawn whole, then written atomically: a full disk never leaves half a picture
    fig.savefig(buffer, format=path.suffix.lstrip(".").lower() or "png")
    plt.close(fig)
    atomic_write_bytes(buffer.getvalue(), path)
    return path


def _energy_unit(largest_mj: float) -> tuple[str, float]:
    """A unit that keeps the energy axis readable: mJ, µJ or nJ, and the factor from mJ."""
    for unit, scale in (("mJ", 1.0), ("µJ", 1e3), ("nJ", 1e6)):
        if largest_mj * scale >= 0.1:
            return unit, scale
    return "nJ", 1e6


def plot_fullrange(report: dict, path: str | Path, teacher: dict | None = None, title: str | None = None) -> Path:
    """Top-1 (left axis) and energy per sample (right axis) against timesteps; the ANN teacher's
    top-1 and energy as dashed reference lines when ``teacher`` (``{"top1", "energy_mj"}``) is given."""
    plt = _pyplot()
    fig, acc_ax = plt.subplots(figsize=(6.4, 4.8), dpi=120)
    energy_ax = acc_ax.twinx()
    ks = report["timesteps"]
    largest = max(report["energy_mj"] + ([teacher["energy_mj"]] if teacher else []))
    unit, scale = _energy_unit(largest)
    acc_line = acc_ax.plot(ks, report["top1"], "o-", color="tab:blue", label="SNN top-1")
    energy_line = energy_ax.plot(ks, [e * scale for e in report["energy_mj"]], "s-", color="tab:red",
                                 label="SNN energy")
    lines = acc_line + energy_line
    if teacher is not None:
        lines.append(acc_ax.axhline(teacher["top1"], ls="--", color="tab:blue", alpha=0.6,
                                    label=f"{teacher.get('kind', 'ANN')} teacher top-1 ({teacher['top1']:.2f}%)"))
        lines.append(energy_ax.axhline(teacher["energy_mj"] * scale, ls="--", color="tab:red", alpha=0.6,
                                       label=f"{teacher.get('kind', 'ANN')} teacher energy "
                                             f"({teacher['energy_mj'] * scale:.3g} {unit})"))
    acc_ax.set_xlabel("inference timesteps k")
    acc_ax.set_xticks(ks)
    acc_ax.set_ylabel("top-1 accuracy (%)", color="tab:blue")
    energy_ax.set_ylabel(f"energy per sample ({unit})", color="tab:red")
    energy_ax.set_ylim(0, largest * scale * 1.3)  # headroom: the teacher's energy line stays off the frame
    acc_ax.grid(alpha=0.3)
    acc_ax.legend(lines, [line.get_label() for line in lines], loc="upper center", bbox_to_anchor=(0.5, -0.14),
                  ncol=2, fontsize=8, frameon=False)  # below the axes: never over a curve
    policy = report.get("energy_policy", {})
    acc_ax.set_title(title or "full-range accuracy and energy", fontsize=10)
    fig.text(0.01, 0.01, f"E = {policy.get('e_mac_pj', 4.6)} pJ·MAC + {policy.get('e_ac_pj', 0.9)} pJ·AC; "
             f"stem MACs {policy.get('static_image_stem_macs', 'once')}", fontsize=7, alpha=0.7)
    fig.tight_layout(rect=(0, 0.03, 1, 1))
    return _save(plt, fig, path)


def plot_early_exit(report: dict, path: str | Path, title: str | None = None) -> Path:
    """Early-exit accuracy against mean timesteps (thresholds annotated), with the fixed-k curve."""
    sweep = report["early_exit"]
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6.4, 4.2), dpi=120)
    ax.plot(report["timesteps"], report["top1"], "o--", color="gray", label="fixed k (all samples)")
    ax.plot(sweep["mean_timesteps"], sweep["top1"], "o-", color="tab:green", label="early exit")
    for threshold, x, y in zip(sweep["thresholds"], sweep["mean_timesteps"], sweep["top1"]):
        ax.annotate(f"{threshold:g}", (x, y), textcoords="offset points", xytext=(3, -10), fontsize=7)
    ax.set_xlabel("mean timesteps per sample")
    ax.set_ylabel("top-1 accuracy (%)")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    ax.set_title(title or "early exit: accuracy vs mean timesteps (labels: confidence threshold)", fontsize=10)
    fig.tight_layout()
    return _save(plt, fig, path)


def plot_methods(curves: dict, path: str | Path, title: str, teacher_top1: float | None = None) -> Path:
    """Top-1 against timesteps, one line per method (and energy per sample beside it when the curves
    carry it): the picture that compares objectives.

    ``curves``: ``{method: {"top1": {k: %}, "top1_range": {k: (low, high)} (optional, error bars),
    "energy_uj": {k: µJ} (optional)}}``; ``teacher_top1`` draws the ANN teacher as a dashed line.
    """
    plt = _pyplot()
    with_energy = any(entry.get("energy_uj") for entry in curves.values())
    fig, axes = plt.subplots(1, 2 if with_energy else 1, figsize=(10 if with_energy else 5.5, 3.8), dpi=120)
    acc_ax = axes[0] if with_energy else axes
    steps = []
    for method, entry in curves.items():
        steps = sorted(int(k) for k in entry["top1"])
        values = [entry["top1"][_key(entry["top1"], k)] for k in steps]
        ranges = entry.get("top1_range")
        if ranges:
            low = [values[i] - ranges[_key(ranges, k)][0] for i, k in enumerate(steps)]
            high = [ranges[_key(ranges, k)][1] - values[i] for i, k in enumerate(steps)]
            acc_ax.errorbar(steps, values, yerr=[low, high], marker="o", capsize=3, label=method)
        else:
            acc_ax.plot(steps, values, marker="o", label=method)
        if with_energy and entry.get("energy_uj"):
            axes[1].plot(steps, [entry["energy_uj"][_key(entry["energy_uj"], k)] for k in steps], marker="s",
                         label=method)
    if teacher_top1 is not None:
        acc_ax.axhline(teacher_top1, ls="--", color="k", label=f"ANN teacher ({teacher_top1:.2f}%)")
    acc_ax.set_xlabel("inference timesteps")
    acc_ax.set_ylabel("test top-1 (%)")
    acc_ax.set_xticks(steps)
    acc_ax.set_title(title, fontsize=10)
    acc_ax.grid(alpha=0.3)
    acc_ax.legend(fontsize=8)
    if with_energy:
        axes[1].set_xlabel("inference timesteps")
        axes[1].set_ylabel("energy per sample (µJ)")
        axes[1].set_xticks(steps)
        axes[1].set_title("estimated energy (4.6 pJ/MAC, 0.9 pJ/AC)", fontsize=10)
        axes[1].grid(alpha=0.3)
        axes[1].legend(fontsize=8)
    fig.tight_layout()
    return _save(plt, fig, path)


def _key(mapping: dict, k: int):
    """Per-k dicts come keyed by int (in memory) or by str (read back from JSON)."""
    return k if k in mapping else str(k)
