"""Objectives: each value against an independent, written-out formula (plain Python floats, 1e-6),
gradients reach the student only, and clear errors. Properties (hypothesis) are in
test_losses_properties.py."""

import math

import pytest
import torch
from torch import nn

import spikedistill as sd
from spikedistill.errors import SpikeDistillError
from spikedistill.losses import LOSSES, LossOutput, create_loss, kd_kl

torch.set_num_threads(1)
T, B, K = 3, 2, 4


# ---- reference formulas on plain Python lists -------------------------------------------------
def softmax(v, tau=1.0):
    m = max(x / tau for x in v)
    e = [math.exp(x / tau - m) for x in v]
    return [x / sum(e) for x in e]


def ce(v, y):
    return -math.log(softmax(v)[y])


def kl(p, q):  # KL(p ‖ q) of two probability lists
    return sum(pi * (math.log(pi) - math.log(qi)) for pi, qi in zip(p, q) if pi > 0)


def entropy(p):
    return -sum(pi * math.log(pi) for pi in p if pi > 0)


def mean(xs):
    xs = list(xs)
    return sum(xs) / len(xs)


def vmean(vs):  # elementwise mean of equal-length lists
    return [mean(col) for col in zip(*vs)]


def close(out, ref):
    value = out.item() if torch.is_tensor(out) else out
    assert value == pytest.approx(ref, abs=1e-6, rel=1e-6)


@pytest.fixture
def batch():
    g = torch.Generator().manual_seed(0)
    z = (2 * torch.randn(T, B, K, generator=g, dtype=torch.float64)).requires_grad_(True)
    zt = 2 * torch.randn(B, K, generator=g, dtype=torch.float64)
    y = torch.tensor([1, 3])
    return z, zt, y, z.tolist(), zt.tolist(), y.tolist()


def ens(zl, b):
    return vmean(zl[t][b] for t in range(len(zl)))


# ---- values -----------------------------------------------------------------------------------
def test_ce_is_cross_entropy_of_time_mean(batch):
    z, _, y, zl, _, yl = batch
    out = create_loss("ce")(z, y)
    assert isinstance(out, LossOutput) and set(out.parts) == {"ce"}
    close(out.total, mean(ce(ens(zl, b), yl[b]) for b in range(B)))


def test_twce_is_mean_over_steps_of_per_step_cross_entropy(batch):
    z, _, y, zl, _, yl = batch
    close(create_loss("twce")(z, y).total, mean(ce(zl[t][b], yl[b]) for t in range(T) for b in range(B)))


def test_tet_mixes_twce_and_mse_to_phi(batch):
    z, _, y, zl, _, yl = batch
    twce = mean(ce(zl[t][b], yl[b]) for t in range(T) for b in range(B))
    mse = mean((x - 0.5) ** 2 for t in range(T) for b in range(B) for x in zl[t][b])
    out = create_loss("tet", lam=0.3, phi=0.5)(z, y)
    close(out.total, 0.7 * twce + 0.3 * mse)
    close(out.parts["mse"], mse)
    default = create_loss("tet")(z, y)  # λ = 1e-3, φ = 1 (official TET code)
    close(default.total, (1 - 1e-3) * twce + 1e-3 * mean((x - 1) ** 2 for r in zl for v in r for x in v))


def test_kd_kl_is_tau2_batchmean_kl_target_first(batch):
    z, zt, _, zl, ztl, _ = batch
    tau = 3.0
    ref = mean(kl(softmax(ztl[b], tau), softmax(zl[0][b], tau)) for b in range(B))
    close(kd_kl(z[0], zt, tau), tau**2 * ref)
    close(kd_kl(z[0], zt, tau, scale_tau2=False), ref)
    # [T,B,K] student vs [B,K] target: mean over t of the per-step batchmean KL
    per_step = mean(kl(softmax(ztl[b], tau), softmax(zl[t][b], tau)) for t in range(T) for b in range(B))
    close(kd_kl(z, zt, tau), tau**2 * per_step)


@pytest.mark.parametrize("teacher_shape", ["2d", "3d"])
def test_skd_is_sce_plus_alpha_tau2_kl_on_time_mean(batch, teacher_shape):
    z, zt, y, zl, ztl, yl = batch
    teacher = zt if teacher_shape == "2d" else zt.unsqueeze(0)  # ANN twins return [1, B, K]
    sce = mean(ce(ens(zl, b), yl[b]) for b in range(B))
    skl = mean(kl(softmax(ztl[b], 3.0), softmax(ens(zl, b), 3.0)) for b in range(B))
    out = create_loss("skd")(z, y, teacher_logits=teacher)
    close(out.total, sce + 0.2 * 9 * skl)
    close(out.parts["kl"], 9 * skl)
    hinton = create_loss("skd", ce_weight=0.1, alpha=0.9, tau=4.0)(z, y, teacher_logits=teacher)
    close(hinton.total, 0.1 * sce + 0.9 * 16 * mean(kl(softmax(ztl[b], 4), softmax(ens(zl, b), 4)) for b in range(B)))


def twkd_reference(zl, ztl, yl, alpha, beta, tau, targets):
    steps = range(len(zl))
    twce = mean(ce(zl[t][b], yl[b]) for t in steps for b in range(B))
    twkl = mean(tau**2 * kl(softmax(ztl[b], tau), softmax(zl[t][b], tau)) for t in steps for b in range(B))
    twsd = mean(tau**2 * kl(softmax(targets[b], tau), softmax(zl[t][b], tau)) for t in steps for b in range(B))
    return twce + alpha * twkl + beta * twsd, twce, twkl, twsd


def test_twkd_paper_form_uses_the_time_mean_as_self_target(batch):
    z, zt, y, zl, ztl, yl = batch
    total, twce, twkl, twsd = twkd_reference(zl, ztl, yl, 0.2, 0.5, 3.0, [ens(zl, b) for b in range(B)])
    out = create_loss("twkd")(z, y, teacher_logits=zt)
    close(out.total, total)
    for key, ref in (("ce", twce), ("kl", twkl), ("sd", twsd)):
        close(out.parts[key], ref)
    other = create_loss("twkd", alpha=0.7, beta=1.3, tau=2.0)(z, y, teacher_logits=zt)
    close(other.total, twkd_reference(zl, ztl, yl, 0.7, 1.3, 2.0, [ens(zl, b) for b in range(B)])[0])


def test_twkd_code_form_uses_the_mean_of_correct_steps_and_uniform_when_none(batch):
    z, zt, _, zl, ztl, _ = batch
    argmax = [[max(range(K), key=lambda k: zl[t][b][k]) for t in range(T)] for b in range(B)]
    never = [k for k in range(K) if k not in argmax[0]][0]  # sample 0: no step is correct
    labels = [never, argmax[1][0]]  # sample 1: at least step 0 is correct
    targets = []
    for b in range(B):
        correct = [zl[t][b] for t in range(T) if argmax[b][t] == labels[b]]
        targets.append(vmean(correct) if correct else [0.0] * K)  # zero vector → uniform target
    assert targets[0] == [0.0] * K and targets[1] != [0.0] * K
    out = create_loss("twkd", sd_target="correct_mean")(z, torch.tensor(labels), teacher_logits=zt)
    close(out.total, twkd_reference(zl, ztl, labels, 0.2, 0.5, 3.0, targets)[0])


def test_twkd_without_teacher_when_alpha_is_zero(batch):
    z, _, y, zl, _, yl = batch
    crit = create_loss("twkd", alpha=0.0)
    assert not crit.needs_teacher and create_loss("twkd").needs_teacher
    close(crit(z, y).total, twkd_reference(zl, [[0.0] * K] * B, yl, 0.0, 0.5, 3.0, [ens(zl, b) for b in range(B)])[0])


def test_tser_is_convex_ts_ce_ts_kl_minus_lambda_entropy(batch):
    z, zt, y, zl, ztl, yl = batch
    steps = [(t, b) for t in range(T) for b in range(B)]
    ts_ce = mean(ce(zl[t][b], yl[b]) for t, b in steps)
    ts_kl = mean(kl(softmax(ztl[b], 4.0), softmax(zl[t][b], 4.0)) for t, b in steps)
    h = mean(entropy(softmax(zl[t][b], 4.0)) for t, b in steps)
    out = create_loss("tser")(z, y, teacher_logits=zt)  # α 0.5, λ 0.1, τ 4, sign −1, τ² on KL
    close(out.total, 0.5 * ts_ce + 0.5 * 16 * ts_kl - 0.1 * h)
    close(out.parts["entropy"], h)
    variant = create_loss("tser", alpha=0.3, lam=0.2, tau=2.0, entropy_sign=1, ce_uses_tau=True, kl_tau2=False,
                          weighting="additive")(z, y, teacher_logits=zt)
    ts_ce_tau = mean(ce([x / 2 for x in zl[t][b]], yl[b]) for t, b in steps)
    ts_kl2 = mean(kl(softmax(ztl[b], 2.0), softmax(zl[t][b], 2.0)) for t, b in steps)
    h2 = mean(entropy(softmax(zl[t][b], 2.0)) for t, b in steps)
    close(variant.total, ts_ce_tau + 0.3 * ts_kl2 + 0.2 * h2)


def dkd_reference(student, teacher, y, tau):  # one sample: (TCKD, NCKD) without τ²
    ps, pt = softmax(student, tau), softmax(teacher, tau)
    tckd = kl([pt[y], 1 - pt[y]], [ps[y], 1 - ps[y]])
    rest_s = [ps[k] / (1 - ps[y]) for k in range(len(ps)) if k != y]
    rest_t = [pt[k] / (1 - pt[y]) for k in range(len(pt)) if k != y]
    return tckd, kl(rest_t, rest_s)


def test_dkd_on_time_mean_with_linear_warmup(batch):
    z, zt, y, zl, ztl, yl = batch
    terms = [dkd_reference(ens(zl, b), ztl[b], yl[b], 4.0) for b in range(B)]
    tckd, nckd = 16 * mean(t for t, _ in terms), 16 * mean(n for _, n in terms)
    sce = mean(ce(ens(zl, b), yl[b]) for b in range(B))
    crit = create_loss("dkd", warmup=0)  # α 1, β 8, τ 4
    out = crit(z, y, teacher_logits=zt)
    close(out.total, sce + 1.0 * tckd + 8.0 * nckd)
    close(out.parts["tckd"], tckd)
    close(out.parts["nckd"], nckd)
    warm = create_loss("dkd")  # warmup 20 epochs: the weight at 0-based epoch e is min((e+1)/20, 1)
    close(warm(z, y, teacher_logits=zt).total, sce + (1 / 20) * (tckd + 8 * nckd))
    warm.set_epoch(4)
    close(warm(z, y, teacher_logits=zt).total, sce + (5 / 20) * (tckd + 8 * nckd))
    warm.set_epoch(50)
    close(warm(z, y, teacher_logits=zt).total, sce + tckd + 8 * nckd)


def test_dkd_per_step_variant_averages_over_steps(batch):
    z, zt, y, zl, ztl, yl = batch
    terms = [dkd_reference(zl[t][b], ztl[b], yl[b], 2.0) for t in range(T) for b in range(B)]
    twce = mean(ce(zl[t][b], yl[b]) for t in range(T) for b in range(B))
    out = create_loss("dkd", per_step=True, warmup=0, alpha=0.5, beta=2.0, tau=2.0)(z, y, teacher_logits=zt)
    close(out.total, twce + 4 * (0.5 * mean(t for t, _ in terms) + 2.0 * mean(n for _, n in terms)))


def make_features(steps, generator):
    return {
        "stem": torch.rand(steps, B, 3, 4, 4, generator=generator, dtype=torch.float64),
        "layer1": torch.rand(steps, B, 5, 2, 2, generator=generator, dtype=torch.float64, requires_grad=True),
        "layer2": torch.rand(steps, B, 6, 2, 2, generator=generator, dtype=torch.float64),
    }


def test_tssd_temporal_and_spatial_self_distillation():
    g = torch.Generator().manual_seed(1)
    steps = 5  # T_s = 3 deployed, T_t = 3 + 2 trained
    z = torch.randn(steps, B, K, generator=g, dtype=torch.float64, requires_grad=True)
    y = torch.tensor([0, 2])
    features = make_features(steps, g)
    crit = create_loss("tssd", alpha=0.7, beta=0.4, tau=2.0, in_channels=5, num_classes=K).double()
    assert crit.train_timesteps(3) == 5 and crit.needs_features and not crit.needs_teacher
    out = crit(z, y, features=features)  # default stage: second-to-last ("layer1")
    zl, fl = z.tolist(), features["layer1"].tolist()
    w, bias = crit.weak_head.weight.tolist(), crit.weak_head.bias.tolist()
    total_ref = {"ce": 0.0, "tsd": 0.0, "ssd": 0.0}
    for b in range(B):
        z_s = vmean(zl[t][b] for t in range(3))
        z_t = vmean(zl[t][b] for t in range(5))
        gap = [[mean(x for row in fl[t][b][c] for x in row) for c in range(5)] for t in range(5)]
        h = vmean([sum(w[k][c] * gap[t][c] for c in range(5)) + bias[k] for k in range(K)] for t in range(5))
        total_ref["ce"] += ce(z_s, y.tolist()[b]) / B
        total_ref["tsd"] += 4 * kl(softmax(z_t, 2), softmax(z_s, 2)) / B
        total_ref["ssd"] += 4 * kl(softmax(z_t, 2), softmax(h, 2)) / B
    close(out.total, total_ref["ce"] + 0.7 * total_ref["tsd"] + 0.4 * total_ref["ssd"])
    for key, ref in total_ref.items():
        close(out.parts[key], ref)


def test_tssd_weak_head_is_built_lazily_and_trained():
    g = torch.Generator().manual_seed(2)
    crit = create_loss("tssd")
    features = {k: v.float() for k, v in make_features(6, g).items()}
    out = crit(torch.randn(6, B, K, generator=g), torch.tensor([0, 1]), features=features)
    assert crit.weak_head.weight.shape == (K, 5)
    out.total.backward()
    assert crit.weak_head.weight.grad.abs().sum() > 0 and crit.weak_head.bias.grad.abs().sum() > 0
    assert len(list(crit.parameters())) == 2


class TinyTeacher(nn.Module):
    """A head like the zoo's: GAP → fc, or GAP → fc1 → ReLU → fc (ResNet-19)."""

    def __init__(self, channels, hidden=None):
        super().__init__()
        if hidden:
            self.fc1, self.fc1_act, self.fc = nn.Linear(channels, hidden), nn.ReLU(), nn.Linear(hidden, K)
        else:
            self.fc = nn.Linear(channels, K)
        self.double()


def ckdsnn_reference(zl, ztl, yl, student_f, teacher_f, channel_weight, noise, mode, tau2, samd_t=2.0, nld_t=2.0,
                     lam=0.1):
    """CE(z_ens) + SAMD + NLD written out (the CKDSNN paper and code); channel_weight(b, c) → [D]."""
    steps, chans, hgt, wid = len(zl), len(student_f[0][0]), len(student_f[0][0][0]), len(student_f[0][0][0][0])
    sam = [[sum(student_f[t][b][c][i][j] for t in range(steps) for c in range(chans)) for i in range(hgt)
            for j in range(wid)] for b in range(B)]
    cam = []
    for b in range(B):
        c = max(range(K), key=lambda k: ztl[b][k])  # teacher's predicted class
        wts = channel_weight(b, c)
        cam.append([max(0.0, sum(wts[d] * teacher_f[b][d][i][j] for d in range(len(wts)))) for i in range(hgt)
                    for j in range(wid)])

    def norm(maps):  # the code: m = m − m.min(); m / (m.max() + 1e-3), the max taken after the shift
        lo, hi = min(min(m) for m in maps), max(max(m) for m in maps)
        return [[(x - lo) / (hi - lo + 1e-3) for x in m] for m in maps]

    sam, cam = norm(sam), norm(cam)
    samd = mean(kl(softmax(cam[b], samd_t), softmax(sam[b], samd_t)) for b in range(B)) * (samd_t**2 if tau2 else 1)
    nld, sce = 0.0, 0.0
    for b in range(B):
        zb = ens(zl, b)
        mu = mean(zb)
        sigma = math.sqrt(sum((x - mu) ** 2 for x in zb) / (K - 1))
        p = softmax(ztl[b], nld_t)
        if mode == "paper_logit_noise":
            q = softmax([x + lam * (mu + sigma * n) for x, n in zip(zb, noise[b])], nld_t)
        else:
            noisy = softmax([mu + sigma**2 * n for n in noise[b]], nld_t)
            q = [(1 - lam) * a + lam * e for a, e in zip(softmax(zb, nld_t), noisy)]
        nld += nld_t**2 * kl(p, q) / B
        sce += ce(zb, yl[b]) / B
    return sce + samd + nld, samd, nld


@pytest.mark.parametrize("mode,tau2", [("paper_logit_noise", True), ("code_prob_mix", False)])
@pytest.mark.parametrize("hidden", [None, 3])
def test_ckdsnn_samd_plus_nld_paper_and_code_forms(batch, mode, tau2, hidden):
    z, zt, y, zl, ztl, yl = batch
    g = torch.Generator().manual_seed(3)
    student_f = {"layer1": torch.rand(T, B, 2, 3, 3, generator=g, dtype=torch.float64, requires_grad=True)}
    teacher_f = {"layer1": torch.rand(1, B, 5, 3, 3, generator=g, dtype=torch.float64)}
    teacher = TinyTeacher(5, hidden)
    torch.manual_seed(7)
    out = create_loss("ckdsnn", nld_mode=mode, samd_tau2=tau2)(z, y, teacher_logits=zt, features=student_f,
                                                                 teacher_features=teacher_f, teacher=teacher)
    torch.manual_seed(7)
    noise = torch.randn(B, K, dtype=torch.float64).tolist()
    tf = teacher_f["layer1"][0].tolist()
    if hidden:  # Grad-CAM weight of a GAP → fc1 → ReLU → fc head: W2[c] · diag(1[W1 x + b1 > 0]) · W1
        w1, b1, w2 = teacher.fc1.weight.tolist(), teacher.fc1.bias.tolist(), teacher.fc.weight.tolist()

        def channel_weight(b, c):
            gap = [mean(x for row in tf[b][d] for x in row) for d in range(5)]
            on = [sum(w1[h][d] * gap[d] for d in range(5)) + b1[h] > 0 for h in range(hidden)]
            return [sum(w2[c][h] * w1[h][d] for h in range(hidden) if on[h]) for d in range(5)]
    else:  # classic CAM: the fc row of the class
        def channel_weight(b, c):
            return teacher.fc.weight[c].tolist()
    total, samd, nld = ckdsnn_reference(zl, ztl, yl, student_f["layer1"].tolist(), tf, channel_weight, noise, mode,
                                        tau2)
    close(out.parts["samd"], samd)
    close(out.parts["nld"], nld)
    close(out.total, total)


def test_ckdsnn_code_normalisation_divides_by_the_range_of_a_map_whose_minimum_is_positive():
    from spikedistill.losses.ckdsnn import minmax

    maps = torch.tensor([[[5.0, 6.0], [7.0, 9.0]], [[8.0, 5.5], [6.0, 7.0]]], dtype=torch.float64)  # min 5, max 9
    batch = minmax(maps)
    # (M − 5)/(9 − 5 + 1e-3): the batch maximum lands just below 1 (not (9 − 5)/(9 + 1e-3) = 0.4444).
    assert batch[0, 1, 1].item() == pytest.approx(4 / 4.001, abs=1e-12)
    assert batch[1, 0, 0].item() == pytest.approx(3 / 4.001, abs=1e-12)
    assert batch.min().item() == 0.0
    sample = minmax(maps, per_sample=True)  # second map: min 5.5, max 8
    assert sample[1, 0, 0].item() == pytest.approx(2.5 / 2.501, abs=1e-12)
    assert sample[1, 1, 0].item() == pytest.approx(0.5 / 2.501, abs=1e-12)


def test_ckdsnn_with_zoo_models_gives_no_gradient_to_the_teacher():
    torch.manual_seed(0)
    student = sd.create_model("small_cnn", spiking=True, num_classes=K, in_channels=1)
    teacher = sd.create_model("small_cnn", spiking=False, num_classes=K, in_channels=1).eval()
    x, y = torch.randn(B, 1, 8, 8), torch.tensor([0, 3])
    logits, features = student(x, timesteps=2, return_features=True)
    teacher_logits, teacher_features = teacher(x, return_features=True)  # deliberately not under no_grad
    crit = create_loss("ckdsnn")
    assert crit.needs_teacher and crit.needs_features and crit.needs_teacher_features
    out = crit(logits, y, teacher_logits=teacher_logits, features=features, teacher_features=teacher_features,
               teacher=teacher)
    out.total.backward()
    assert all(p.grad is None for p in teacher.parameters())
    assert student.stem.conv.weight.grad.abs().sum() > 0


def test_tssd_with_a_zoo_model_runs_at_the_extended_timesteps():
    torch.manual_seed(0)
    student = sd.create_model("small_cnn", spiking=True, num_classes=K, in_channels=1)
    crit = create_loss("tssd", in_channels=64, num_classes=K)
    logits, features = student(torch.randn(B, 1, 8, 8), timesteps=crit.train_timesteps(2), return_features=True)
    assert logits.shape[0] == 4
    crit(logits, torch.tensor([1, 2]), features=features).total.backward()
    assert crit.weak_head.weight.grad is not None


def test_sum_composes_weighted_terms_with_prefixed_parts(batch):
    z, zt, y, *_ = batch
    g = torch.Generator().manual_seed(4)
    features = make_features(T, g)
    crit = create_loss("sum", terms=[{"name": "twkd", "beta": 0.3},
                                     {"name": "tssd", "weight": 0.5, "ce_weight": 0, "alpha": 0},
                                     {"name": "ce", "weight": 2.0}, {"name": "ce"}]).double()
    assert crit.train_timesteps(3) == 3 and crit.needs_teacher and crit.needs_features
    out = crit(z, y, teacher_logits=zt, features=features)
    twkd = create_loss("twkd", beta=0.3)(z, y, teacher_logits=zt)
    tssd_term = crit.terms[1](z, y, features=features)
    sce = create_loss("ce")(z, y).total
    close(out.total, twkd.total.item() + 0.5 * tssd_term.total.item() + 3 * sce.item())
    assert {"twkd.ce", "twkd.kl", "twkd.sd", "tssd.ssd", "ce_2.ce", "ce_3.total"} <= set(out.parts)
    close(out.parts["twkd.sd"], twkd.parts["sd"].item())
    assert len(list(crit.parameters())) == 2  # the weak head's, for the optimizer


def test_sum_binds_every_term_to_the_student_before_any_call():
    # The model tells the objective what it needs (stage channels, classes): no dry run, no reordering.
    import spikedistill as sd

    model = sd.create_model("small_cnn", num_classes=7, widths=[8, 16, 32])
    crit = create_loss("sum", terms=[{"name": "twkd"}, {"name": "tssd", "ce_weight": 0, "alpha": 0}])
    crit.bind(model)
    assert crit.terms[1].weak_head.weight.shape == (7, 16)  # layer1, the stage before the last, has 16 channels
    with pytest.raises(SpikeDistillError, match="needs teacher_logits"):  # the terms run in the recipe's order
        crit(torch.zeros(2, 3, 7), torch.zeros(3, dtype=torch.long))


# ---- gradients reach the student only ---------------------------------------------------------
@pytest.mark.parametrize("name", ["skd", "twkd", "tser", "dkd"])
def test_teacher_logits_receive_no_gradient(batch, name):
    z, zt, y, *_ = batch
    teacher = zt.clone().requires_grad_(True)
    create_loss(name)(z, y, teacher_logits=teacher).total.backward()
    assert teacher.grad is None
    assert z.grad is not None and z.grad.abs().sum() > 0


@pytest.mark.parametrize("sd_target", ["mean", "correct_mean"])
def test_twkd_self_distillation_target_is_detached(batch, sd_target):
    z, _, y, *_ = batch
    target_of = {"mean": lambda v: v.mean(0),
                 "correct_mean": lambda v: sum(v[t] * (v[t].argmax(-1) == y)[:, None] for t in range(T)) /
                 ((v.argmax(-1) == y).sum(0)[:, None] + 1e-8)}[sd_target]

    def term(target):  # τ²·(1/T)Σ_t batchmean KL(target ‖ z[t]), written with torch ops
        p = torch.softmax(target / 3, -1)
        return 9 * (p * (p.log() - torch.log_softmax(z / 3, -1))).sum(-1).mean()

    grad = torch.autograd.grad(create_loss("twkd", alpha=0.0, beta=1.0, sd_target=sd_target)(z, y).total, z)[0]
    twce_grad = torch.autograd.grad(create_loss("twce")(z, y).total, z)[0]
    detached = torch.autograd.grad(term(target_of(z).detach()), z)[0]
    attached = torch.autograd.grad(term(target_of(z)), z)[0]
    assert torch.allclose(grad, twce_grad + detached, atol=1e-9)
    if sd_target == "correct_mean":
        assert not torch.allclose(grad, twce_grad + attached, atol=1e-6)  # the test can tell the difference
    else:  # Σ_t (log p^τ(z_ens) − log p^τ(z[t])) is a constant vector, so the gradient through z_ens is 0
        assert torch.allclose(detached, attached, atol=1e-12)


def test_kd_kl_target_receives_no_gradient(batch):
    z, zt, *_ = batch
    target = zt.clone().requires_grad_(True)
    kd_kl(z, target, 2.0).backward()
    assert target.grad is None and z.grad.abs().sum() > 0


def test_tssd_extended_steps_teach_without_being_taught():
    g = torch.Generator().manual_seed(5)
    z = torch.randn(5, B, K, generator=g, dtype=torch.float64, requires_grad=True)
    features = make_features(5, g)
    temporal = create_loss("tssd", ce_weight=0.0, beta=0.0, in_channels=5, num_classes=K).double()
    temporal(z, torch.tensor([0, 1]), features=features).total.backward()
    assert z.grad[3:].abs().max() == 0 and z.grad[:3].abs().max() > 0  # the T_t-mean target is detached
    z.grad = None
    spatial = create_loss("tssd", ce_weight=0.0, alpha=0.0, in_channels=5, num_classes=K).double()
    assert spatial.train_timesteps(5) == 5
    spatial(z, torch.tensor([0, 1]), features=features).total.backward()
    assert z.grad is None or z.grad.abs().max() == 0  # the final output only teaches the weak head
    assert features["layer1"].grad.abs().sum() > 0 and spatial.weak_head.weight.grad.abs().sum() > 0


def test_ckdsnn_teacher_features_and_logits_receive_no_gradient(batch):
    z, zt, y, *_ = batch
    teacher_f = torch.rand(1, B, 5, 3, 3, dtype=torch.float64, requires_grad=True)
    teacher_logits = zt.clone().requires_grad_(True)
    student_f = torch.rand(T, B, 2, 3, 3, dtype=torch.float64, requires_grad=True)
    teacher = TinyTeacher(5, 3)
    out = create_loss("ckdsnn")(z, y, teacher_logits=teacher_logits, features={"s": student_f},
                                teacher_features={"t": teacher_f}, teacher=teacher)
    out.total.backward()
    assert teacher_f.grad is None and teacher_logits.grad is None
    assert all(p.grad is None for p in teacher.parameters())
    assert student_f.grad.abs().sum() > 0 and z.grad.abs().sum() > 0


# ---- errors -----------------------------------------------------------------------------------
def one_line_error(fn, *fragments):
    with pytest.raises(SpikeDistillError) as info:
        fn()
    message = str(info.value)
    assert "\n" not in message
    for fragment in fragments:
        assert fragment in message, message
    return message


def test_unknown_loss_name_suggests_and_lists_all():
    message = one_line_error(lambda: create_loss("twdk"), "unknown loss 'twdk'; did you mean 'twkd'?")
    assert message.endswith("known: ce, twce, tet, skd, twkd, tssd, tser, ckdsnn, dkd, sum")
    assert LOSSES.names()[:9] == ["ce", "twce", "tet", "skd", "twkd", "tssd", "tser", "ckdsnn", "dkd"]


def test_unknown_option_lists_the_valid_ones():
    one_line_error(lambda: create_loss("twkd", alpah=0.1), "unknown option 'alpah' for loss 'twkd'",
                   "did you mean 'alpha'?", "valid: alpha, beta, tau, sd_target")
    one_line_error(lambda: create_loss("ce", tau=2), "for loss 'ce'", "valid: (none)")


@pytest.mark.parametrize("name,options,fragment", [
    ("twkd", {"alpha": -0.1}, "alpha=-0.1 is invalid; use a number >= 0"),
    ("twkd", {"tau": 0}, "tau=0 is invalid; use a number > 0"),
    ("skd", {"tau": "3"}, "tau='3' is invalid"),
    ("twkd", {"sd_target": "median"}, "use one of 'mean', 'correct_mean'"),
    ("tet", {"lam": 1.5}, "use a number >= 0.0 and <= 1.0"),
    ("ckdsnn", {"nld_mode": "paper"}, "'paper_logit_noise', 'code_prob_mix'"),
    ("ckdsnn", {"samd_tau2": "yes"}, "use true or false"),
    ("dkd", {"warmup": 2.5}, "use an integer >= 0"),
    ("tssd", {"extra_timesteps": -1}, "use an integer >= 0"),
    ("tser", {"entropy_sign": 0}, "use one of -1, 1"),
])
def test_bad_option_values_name_the_option_and_the_range(name, options, fragment):
    one_line_error(lambda: create_loss(name, **options), f"loss '{name}'", fragment)


def test_missing_inputs_say_what_to_pass(batch):
    z, zt, y, *_ = batch
    one_line_error(lambda: create_loss("twkd")(z, y), "needs teacher_logits", "or set alpha=0")
    one_line_error(lambda: create_loss("tssd")(z, y), "needs features", "return_features=True")
    one_line_error(lambda: create_loss("tssd", stage="layer9")(z, y, features=make_features(T, torch.Generator())),
                   "stage 'layer9' not in features; known: stem, layer1, layer2")
    one_line_error(lambda: create_loss("tssd", extra_timesteps=3)(z, y, features=make_features(T, torch.Generator())),
                   "train_timesteps")
    one_line_error(lambda: create_loss("ckdsnn")(z, y, teacher_logits=zt, features={"a": z}, teacher_features={"a": z}),
                   "needs teacher=")
    one_line_error(lambda: create_loss("skd")(z[0, 0], y, teacher_logits=zt), "expects student logits [T, B, K]")


def test_sum_rejects_bad_terms():
    one_line_error(lambda: create_loss("sum"), "needs terms=")
    one_line_error(lambda: create_loss("sum", terms=[{"weight": 1}]), "term 0 must be a dict with a 'name' key")
    one_line_error(lambda: create_loss("sum", terms=[{"name": "twkd", "weight": -1}]), "terms[0].weight=-1")
    one_line_error(lambda: create_loss("sum", terms=[{"name": "twkd", "alpah": 1}]), "did you mean 'alpha'?")
    one_line_error(lambda: create_loss("sum", terms=[{"name": "twkd"}, {"name": "tssd"}]),
                   "terms train at different timesteps")


@pytest.mark.parametrize("name", ["skd", "twkd", "tser", "dkd"])
def test_low_precision_logits_are_scored_in_float32(name):
    g = torch.Generator().manual_seed(6)
    z, zt, y = torch.randn(T, B, K, generator=g), torch.randn(B, K, generator=g), torch.tensor([0, 1])
    crit = create_loss(name, **({"warmup": 0} if name == "dkd" else {}))
    low = crit(z.bfloat16(), y, teacher_logits=zt.bfloat16())
    ref = crit(z.bfloat16().float(), y, teacher_logits=zt.bfloat16().float())
    assert low.total.dtype == torch.float32
    close(low.total, ref.total.item())  # a bf16 KL rounds to negative values; float32 does not


def test_ckdsnn_pools_the_student_map_to_the_teacher_map_size(batch):
    z, zt, y, *_ = batch
    g = torch.Generator().manual_seed(8)
    student_f = torch.rand(T, B, 2, 4, 4, generator=g, dtype=torch.float64)
    teacher_f = torch.rand(1, B, 5, 2, 2, generator=g, dtype=torch.float64)
    pooled = student_f.unflatten(-1, (2, 2)).unflatten(-3, (2, 2)).mean(dim=(-3, -1))  # 2×2 average pool
    crit, teacher = create_loss("ckdsnn"), TinyTeacher(5)
    out = [crit(z, y, teacher_logits=zt, features={"s": f}, teacher_features={"t": teacher_f}, teacher=teacher)
           for f in (student_f, pooled)]
    close(out[0].parts["samd"], out[1].parts["samd"].item())


# -- the model contract, refused in one line where it is not kept ---------------------------------

@pytest.mark.parametrize("name, options", [("twkd", {}), ("twkd", {"alpha": 0.0}), ("twce", {}), ("tet", {}),
                                           ("tser", {}), ("tssd", {"extra_timesteps": 0})])
def test_per_step_objectives_refuse_time_reduced_logits(name, options):
    """A [B, K] output would make twkd's self-distillation term exactly 0 (each step is the mean)."""
    torch.manual_seed(0)
    logits, labels, teacher = torch.randn(4, 10), torch.randint(0, 10, (4,)), torch.randn(4, 10)
    with pytest.raises(SpikeDistillError,
                       match=rf"loss '{name}' expects per-step logits \[T, B, K\], got shape \(4, 10\)") as err:
        create_loss(name, **options)(logits, labels, teacher_logits=teacher,
                                     features={"a": torch.rand(1, 4, 3, 2, 2), "b": torch.rand(1, 4, 3, 2, 2)})
    assert "\n" not in str(err.value)
    assert create_loss("skd")(logits, labels, teacher_logits=teacher).total > 0  # time-mean objectives take [B, K]


class Plain(nn.Module):
    def __init__(self, stage_channels=None, num_classes=10):
        super().__init__()
        self.fc = nn.Linear(4, num_classes or 10)
        if stage_channels is not None:
            self.stage_channels = stage_channels
        if num_classes is not None:
            self.num_classes = num_classes

    def forward(self, x, timesteps=None):
        return self.fc(x.flatten(1)).unsqueeze(0)


@pytest.mark.parametrize("model, match", [
    (Plain(), "Plain has no stage_channels; give it stage_channels = {stage name: channels}"),
    (Plain({"layer1": 8}), r"tssd taps the second-to-last stage, but Plain.stage_channels lists only \['layer1'\]"),
    (Plain({"a": 8, "b": 16}, num_classes=None), "student's num_classes, which Plain does not have"),
])
def test_tssd_names_what_the_student_lacks(model, match):
    with pytest.raises(SpikeDistillError, match=match):
        create_loss("tssd").bind(model)


def test_feature_objectives_name_a_malformed_features_argument():
    logits, labels = torch.randn(2, 3, 10), torch.randint(0, 10, (3,))
    with pytest.raises(SpikeDistillError, match=r"needs features as a dict \{stage name: map\}, got a list"):
        create_loss("tssd", extra_timesteps=0)(logits, labels, features=[torch.rand(2, 3, 4, 2, 2)])
    with pytest.raises(SpikeDistillError,
                       match=r"features\['a'\] is shape \(3, 4, 2, 2\); a stage map must be time-first"):
        create_loss("tssd", extra_timesteps=0, stage="a")(logits, labels, features={"a": torch.rand(3, 4, 2, 2)})


def test_a_model_without_features_is_one_line_where_the_training_step_asks_for_them():
    from spikedistill.models.contract import logits_and_features

    x = torch.rand(3, 4)
    assert logits_and_features(Plain(), x, False, timesteps=2)[1] is None
    with pytest.raises(SpikeDistillError,
                       match="reads the student's stage features, but Plain.forward takes no return_features"):
        logits_and_features(Plain(), x, True, timesteps=2)

    class Ignores(Plain):
        def forward(self, x, timesteps=None, **kwargs):
            return super().forward(x)

    with pytest.raises(SpikeDistillError,
                       match=r"Ignores\(x, return_features=True\) returned a tensor of shape \(1, 3, 10\)"):
        logits_and_features(Ignores(), x, True, "teacher")
    net = sd.create_model("small_cnn", num_classes=10)
    logits, features = logits_and_features(net, torch.rand(2, 1, 8, 8), True, timesteps=2)
    assert logits.shape == (2, 2, 10) and list(features) == list(net.stage_names)


def test_the_cached_features_check_follows_an_instance_level_forward_override():
    from spikedistill.models.contract import takes_return_features

    plain, patched = Plain(), Plain()
    patched.forward = lambda x, timesteps=None, return_features=False: x  # a user's instance-level override
    assert not takes_return_features(plain) and takes_return_features(patched)
    assert not takes_return_features(Plain())  # the class's cached answer is not the patched instance's
