"""Properties of the full-range objectives on random logits (hypothesis), the full-range
paper's Lemma 1 (L_SCE ≤ L_TWCE), Prop. 2 (L_SKD ≤ L_TWKD, same α and τ, any β ≥ 0), Prop. 3, and
``twce`` ≡ ``tet`` with λ = 0. Both inequalities are Jensen's: CE and KL(p ‖ softmax(z/τ)) are convex
in the logits z, so the loss of the time-mean is at most the mean of the per-step losses."""

import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from spikedistill.losses import create_loss

torch.set_num_threads(1)

finite = st.floats(-20, 20, allow_nan=False, allow_infinity=False, width=64)


@st.composite
def logit_batches(draw):
    steps, batch, classes = draw(st.integers(1, 4)), draw(st.integers(1, 3)), draw(st.integers(2, 5))
    logits = torch.from_numpy(draw(arrays("float64", (steps, batch, classes), elements=finite)))
    teacher = torch.from_numpy(draw(arrays("float64", (batch, classes), elements=finite)))
    labels = torch.tensor(draw(st.lists(st.integers(0, classes - 1), min_size=batch, max_size=batch)))
    return logits, teacher, labels


SETTINGS = settings(max_examples=60, deadline=None)


@SETTINGS
@given(logit_batches())
def test_sce_is_at_most_twce(data):
    logits, _, labels = data
    assert create_loss("ce")(logits, labels).total <= create_loss("twce")(logits, labels).total + 1e-9


@SETTINGS
@given(logit_batches(), st.floats(0, 2), st.floats(0, 2), st.floats(0.5, 5), st.sampled_from(["mean", "correct_mean"]))
def test_skd_is_at_most_twkd_with_the_same_alpha_and_tau(data, alpha, beta, tau, sd_target):
    logits, teacher, labels = data
    skd = create_loss("skd", alpha=alpha, tau=tau)(logits, labels, teacher_logits=teacher).total
    twkd = create_loss("twkd", alpha=alpha, beta=beta, tau=tau, sd_target=sd_target)(
        logits, labels, teacher_logits=teacher).total
    assert skd <= twkd + 1e-9


@SETTINGS
@given(logit_batches(), st.floats(0, 2), st.floats(0.5, 5), st.data())
def test_skd_at_any_prefix_is_bounded_by_scaled_twkd(data, alpha, tau, draw):
    logits, teacher, labels = data
    steps = logits.shape[0]
    prefix = draw.draw(st.integers(1, steps))  # Prop. 3: L_SKD^(T_k) ≤ (T/T_k)·L_TWKD^(T)
    skd = create_loss("skd", alpha=alpha, tau=tau)(logits[:prefix], labels, teacher_logits=teacher).total
    twkd = create_loss("twkd", alpha=alpha, tau=tau)(logits, labels, teacher_logits=teacher).total
    assert skd <= steps / prefix * twkd + 1e-9


@SETTINGS
@given(logit_batches(), st.floats(-3, 3))
def test_twce_equals_tet_with_lambda_zero(data, phi):
    logits, _, labels = data
    twce = create_loss("twce")(logits, labels).total
    tet = create_loss("tet", lam=0.0, phi=phi)(logits, labels).total
    assert torch.allclose(twce, tet, rtol=0, atol=1e-12)
