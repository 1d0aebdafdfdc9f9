"""``ckdsnn``: SAMD + NLD (Liu et al., "A Closer Look at KD in SNN Training", AAAI 2026;
docs/objectives.md#ckdsnn).

Inputs: ``features`` (student stages, ``[T, B, C, H, W]``), ``teacher_features`` (teacher stages,
``[1, B, D, H, W]``), ``teacher_logits`` and ``teacher`` — the teacher module, used only for its head:
``teacher.fc`` (an ``nn.Linear`` on the global-average-pooled last stage), optionally preceded by
``teacher.fc1`` + ``teacher.fc1_act`` (the ResNet-19 two-layer head). The CAM channel weights are the
gradient of the teacher's class-c logit with respect to its pooled feature: for a single linear head
that is exactly ``W_fc[c]`` (classic CAM, the code's choice), for a deeper head it is Grad-CAM (the
paper's choice); the official code's ``compute_cam``. No gradient reaches the teacher.

Paper (default) vs official code (``plt_train_kd_ckd_snn.py``), as options:
* ``nld_mode="paper_logit_noise"``: z_soft = z + λ·ε, ε ~ N(μ, σ²) per sample (σ = std over classes),
  ``"code_prob_mix"``: q = (1−λ)·softmax(z/τ) + λ·softmax(ε/τ) with ε = μ + n·σ² (variance as scale).
* ``samd_tau2=True`` (paper, 𝒯² = 4 on SAMD) or ``False`` (code).
``lam`` (0.1) is the noise share in both modes; the code's ``noise_weight = 0.9`` is the clean share 1 − λ.
The maps are min–max normalised as ``(M − min)/(max − min + 1e-3)`` over the whole batch, as in the code
(``map_norm="sample"`` does it per sample); the code's ``+1e-10`` on the spatial softmax is omitted.
The student's time-mean logits stand in for the code's time-averaged-before-the-head output.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..errors import SpikeDistillError
from .base import LossOutput, Objective, check_bool, check_choice, check_number, kd_kl, time_mean

NLD_MODES = ("paper_logit_noise", "code_prob_mix")
MAP_NORMS = ("batch", "sample")
CAM_CLASSES = ("predicted", "label")


def minmax(maps: torch.Tensor, per_sample: bool = False) -> torch.Tensor:
    """``(M − min M)/(max M − min M + 1e-3)`` over the batch (code) or per sample; maps ``[B, H, W]``.

    The code shifts first and takes the max of the shifted map (``m = m − m.min(); m / (m.max() + 1e-3)``,
    ``getForwardCAM`` and ``compute_cam``), so the denominator is the range, not the max of M."""
    dims = (-2, -1) if per_sample else (0, -2, -1)
    shifted = maps - maps.amin(dim=dims, keepdim=True)
    return shifted / (shifted.amax(dim=dims, keepdim=True) + 1e-3)


def spike_activation_map(feature: torch.Tensor) -> torch.Tensor:
    """``SAM = Σ_t Σ_c F[t, :, c]``: ``[T, B, C, H, W] → [B, H, W]`` (the paper)."""
    return feature.sum(dim=(0, 2))


def class_activation_map(feature: torch.Tensor, channel_weights: torch.Tensor) -> torch.Tensor:
    """``CAM = ReLU(Σ_d w[b, d]·A[b, d])``: A ``[B, D, H, W]``, w ``[B, D]`` → ``[B, H, W]``
    (the code's ``compute_cam``)."""
    return F.relu(torch.einsum("bdhw,bd->bhw", feature, channel_weights))


def samd_loss(student_feature: torch.Tensor, teacher_map: torch.Tensor, tau: float = 2.0, tau2: bool = True,
              per_sample_norm: bool = False) -> torch.Tensor:
    """``L_SAMD = [𝒯²]·batchmean KL(softmax_HW(CAM/𝒯) ‖ softmax_HW(SAM/𝒯))``, min–max maps (paper and code).

    ``teacher_map`` is the un-normalised CAM ``[B, H, W]``; the student SAM is pooled to its size.
    """
    sam = spike_activation_map(student_feature)
    if sam.shape[-2:] != teacher_map.shape[-2:]:
        sam = F.adaptive_avg_pool2d(sam.unsqueeze(1), teacher_map.shape[-2:]).squeeze(1)
    sam, cam = minmax(sam, per_sample_norm), minmax(teacher_map, per_sample_norm)
    return kd_kl(sam.flatten(1), cam.flatten(1), tau, scale_tau2=tau2)


def nld_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor, noise: torch.Tensor, tau: float = 2.0,
             lam: float = 0.1, mode: str = "paper_logit_noise") -> torch.Tensor:
    """Noise-smoothed logit distillation (paper and official code); ``noise`` ~ N(0, 1), shape ``[B, K]``::

        μ, σ = mean_k z, std_k z (unbiased), per sample; gradient flows through both
        paper: L = τ²·KL(p^τ(z_A) ‖ p^τ(z + λ·(μ + σ·n)))
        code:  L = τ²·KL(p^τ(z_A) ‖ (1−λ)·p^τ(z) + λ·p^τ(μ + σ²·n))
    """
    mean = student_logits.mean(-1, keepdim=True)
    std = student_logits.std(-1, keepdim=True)
    if mode == "paper_logit_noise":
        return kd_kl(student_logits + lam * (mean + std * noise), teacher_logits, tau)
    eps = mean + std.pow(2) * noise
    mixed = (1 - lam) * F.softmax(student_logits / tau, -1) + lam * F.softmax(eps / tau, -1)
    return kd_kl(tau * mixed.log(), teacher_logits, tau)  # softmax(log q) = q: KL to the mixture itself


def teacher_channel_weights(teacher, pooled: torch.Tensor, classes: torch.Tensor) -> torch.Tensor:
    """``∂z_c/∂pooled`` through the teacher's head (= W_fc[c] for a linear head); ``[B, D]``, detached."""
    fc, fc1 = getattr(teacher, "fc", None), getattr(teacher, "fc1", None)
    first = fc1 if fc1 is not None else fc
    if not isinstance(fc, torch.nn.Linear) or not isinstance(first, torch.nn.Linear) \
            or first.in_features != pooled.shape[-1]:
        raise SpikeDistillError(
            f"loss 'ckdsnn' needs teacher= a model whose head is GAP → fc (or fc1 → fc1_act → fc) over the "
            f"{pooled.shape[-1]} channels of its last stage, e.g. create_model('resnet19', spiking=False)"
        )
    with torch.enable_grad():
        x = pooled.detach().requires_grad_(True)
        z = fc(teacher.fc1_act(fc1(x)) if fc1 is not None else x)
        (weights,) = torch.autograd.grad(z.gather(1, classes[:, None]).sum(), x)
    return weights.detach()


def ckdsnn_loss(logits, labels, teacher_logits, student_feature, teacher_feature, teacher, noise,
                beta=1.0, gamma=1.0, samd_tau=2.0, nld_tau=2.0, lam=0.1, nld_mode="paper_logit_noise",
                samd_tau2=True, map_norm="batch", cam_class="predicted"):
    """``L = CE(z_ens, y) + β·L_SAMD + γ·L_NLD`` (the paper). Returns ``(total, ce, samd, nld)``."""
    z_ens = time_mean(logits)
    ce = F.cross_entropy(z_ens, labels)
    feature = teacher_feature.detach().mean(0) if teacher_feature.dim() == 5 else teacher_feature.detach()
    classes = teacher_logits.argmax(-1) if cam_class == "predicted" else labels
    cam = class_activation_map(feature, teacher_channel_weights(teacher, feature.mean(dim=(-2, -1)), classes))
    samd = samd_loss(student_feature, cam, samd_tau, samd_tau2, map_norm == "sample")
    nld = nld_loss(z_ens, teacher_logits, noise, nld_tau, lam, nld_mode)
    return ce + beta * samd + gamma * nld, ce, samd, nld


class CKDSNN(Objective):
    name = "ckdsnn"
    needs_teacher = True
    needs_features = True
    needs_teacher_features = True

    def __init__(self, beta: float = 1.0, gamma: float = 1.0, samd_tau: float = 2.0, nld_tau: float = 2.0,
                 lam: float = 0.1, nld_mode: str = "paper_logit_noise", samd_tau2: bool = True,
                 map_norm: str = "batch", cam_class: str = "predicted", stage: str | None = None,
                 teacher_stage: str | None = None):
        super().__init__()
        self.beta = check_number(self.name, "beta", beta)
        self.gamma = check_number(self.name, "gamma", gamma)
        self.samd_tau = check_number(self.name, "samd_tau", samd_tau, inclusive=False)
        self.nld_tau = check_number(self.name, "nld_tau", nld_tau, inclusive=False)
        self.lam = check_number(self.name, "lam", lam, high=1.0)
        self.nld_mode = check_choice(self.name, "nld_mode", nld_mode, NLD_MODES)
        self.samd_tau2 = check_bool(self.name, "samd_tau2", samd_tau2)
        self.map_norm = check_choice(self.name, "map_norm", map_norm, MAP_NORMS)
        self.cam_class = check_choice(self.name, "cam_class", cam_class, CAM_CLASSES)
        self.stage, self.teacher_stage = stage, teacher_stage

    def forward(self, logits, labels, teacher_logits=None, features=None, teacher_features=None, teacher=None):
        logits = self.steps(logits)
        teacher_2d = self.teacher_2d(teacher_logits)
        if teacher is None:
            raise SpikeDistillError("loss 'ckdsnn' needs teacher= the teacher module (its fc weight makes the CAM)")
        noise = torch.randn(teacher_2d.shape, device=logits.device, dtype=logits.dtype)
        total, ce, samd, nld = ckdsnn_loss(
            logits, labels, teacher_2d, self.feature(features, self.stage, "student"),
            self.feature(teacher_features, self.teacher_stage, "teacher"), teacher, noise, self.beta, self.gamma,
            self.samd_tau, self.nld_tau, self.lam, self.nld_mode, self.samd_tau2, self.map_norm,
            self.cam_class)
        return LossOutput(total, {"ce": ce.detach(), "samd": samd.detach(), "nld": nld.detach()})
