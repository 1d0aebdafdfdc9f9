"""Batched augmentation and batching: shapes, normalisation, determinism, and exact DDP sharding."""

import numpy as np
import pytest
import torch

from spikedistill.data import (
    ArrayDataset,
    GpuAugment,
    batches,
    cutout,
    default_data_root,
    num_batches,
    shard_indices,
)
from spikedistill.errors import SpikeDistillError

MEAN, STD = (0.4914, 0.4822, 0.4465), (0.2023, 0.1994, 0.2010)


@pytest.fixture(scope="module")
def cifar():
    """128 real CIFAR-10 test images (uint8), or random ones if the shared data is absent."""
    path = default_data_root() / "cifar10" / "lossless_subset.npz"
    if path.is_file():
        with np.load(path) as npz:
            images = torch.from_numpy(npz["x_test"][:128]).permute(0, 3, 1, 2).contiguous()
            labels = torch.from_numpy(npz["y_test"][:128].astype(np.int64))
    else:
        images = torch.randint(0, 256, (128, 3, 32, 32), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
        labels = torch.arange(128) % 10
    return ArrayDataset(images, labels, 10, MEAN, STD, "cifar10")


def indexed_dataset(length: int) -> ArrayDataset:
    """Image i is filled with i % 256 and labelled i, so a batch says which samples it holds."""
    images = (torch.arange(length) % 256).to(torch.uint8).view(-1, 1, 1, 1).expand(-1, 1, 2, 2).contiguous()
    return ArrayDataset(images, torch.arange(length), length, (0.5,), (0.25,), "indexed")


def test_eval_mode_and_no_augment_only_normalise(cifar):
    expected = (cifar.images.float() / 255 - torch.tensor(MEAN).view(1, 3, 1, 1)) / torch.tensor(STD).view(1, 3, 1, 1)
    augment = GpuAugment(autoaugment=True, cutout=16).eval()
    torch.testing.assert_close(augment(cifar.images, MEAN, STD), expected)
    torch.testing.assert_close(augment(cifar.images.float() / 255, MEAN, STD), expected)  # float 0..1 input
    x, y = next(batches(cifar, 128, shuffle=False))
    torch.testing.assert_close(x, expected)
    assert torch.equal(y, cifar.labels)


def test_train_output_is_normalised_float_of_the_same_shape(cifar):
    augment = GpuAugment(crop_padding=4, flip=True, autoaugment=True, cutout=16, mean=MEAN, std=STD)
    out = augment(cifar.images)
    assert out.shape == (128, 3, 32, 32) and out.dtype == torch.float32
    lowest = (0 - torch.tensor(MEAN)) / torch.tensor(STD)
    highest = (1 - torch.tensor(MEAN)) / torch.tensor(STD)
    per_channel = out.transpose(0, 1).reshape(3, -1)
    assert (per_channel.min(1).values >= lowest - 1e-5).all() and (per_channel.max(1).values <= highest + 1e-5).all()


def test_crop_with_padding_is_a_zero_filled_shift_of_at_most_four_pixels(cifar):
    augment = GpuAugment(crop_padding=4, flip=False, mean=(0.0,) * 3, std=(1.0,) * 3)
    torch.manual_seed(0)
    out = augment(cifar.images[:32])
    padded = torch.nn.functional.pad(cifar.images[:32].float() / 255, (4, 4, 4, 4))
    shifts = set()
    for image, source in zip(out, padded):
        matches = [(dy, dx) for dy in range(9) for dx in range(9)
                   if torch.allclose(image, source[:, dy : dy + 32, dx : dx + 32])]
        assert matches, "an output image is not a crop of the padded input"
        shifts.add(matches[0])
    assert len(shifts) > 5  # each image draws its own offset


def test_flip_mirrors_about_half_the_images(cifar):
    augment = GpuAugment(crop_padding=0, flip=True, mean=(0.0,) * 3, std=(1.0,) * 3)
    torch.manual_seed(0)
    out = augment(cifar.images)
    source = cifar.images.float() / 255
    flipped = [torch.allclose(o, s.flip(-1)) for o, s in zip(out, source)]
    kept = [torch.allclose(o, s) for o, s in zip(out, source)]
    assert all(f or k for f, k in zip(flipped, kept))
    assert 40 <= sum(flipped) <= 88  # Binomial(128, 0.5)


def test_cutout_zeroes_one_border_clipped_square():
    torch.manual_seed(0)
    out = cutout(torch.ones(256, 3, 32, 32), 16)
    holes = out[:, 0] == 0
    assert torch.equal(holes.unsqueeze(1).expand_as(out), out == 0)  # same hole in every channel
    for hole in holes:
        rows, cols = hole.any(1).nonzero().squeeze(1), hole.any(0).nonzero().squeeze(1)
        assert hole.sum() == len(rows) * len(cols)  # a rectangle
        assert 8 <= len(rows) <= 16 and 8 <= len(cols) <= 16  # clipped at the border, never larger
    areas = holes.sum((1, 2))
    assert (areas == 256).any() and (areas < 256).any()


def test_autoaugment_changes_images_with_a_policy_per_image(cifar):
    augment = GpuAugment(crop_padding=0, flip=False, autoaugment=True, mean=(0.0,) * 3, std=(1.0,) * 3)
    torch.manual_seed(0)
    out = augment(cifar.images)
    changed = ((out - cifar.images.float() / 255).abs().amax((1, 2, 3)) > 1e-3).float().mean()
    assert changed > 0.5
    # one image repeated: every copy draws its own sub-policy
    same = augment(cifar.images[:1].expand(64, -1, -1, -1).contiguous())
    distinct = {tuple(image.flatten()[::97].mul(1000).round().tolist()) for image in same}
    assert len(distinct) > 8


def test_batches_are_deterministic_per_seed_and_epoch_and_leave_global_rng_alone(cifar):
    augment = GpuAugment(autoaugment=True, cutout=16)
    dataset = cifar.subset(60)

    def epoch_batches(seed, epoch):
        return [(x.clone(), y.clone()) for x, y in batches(dataset, 32, True, augment, seed=seed, epoch=epoch)]

    torch.manual_seed(123)
    state = torch.get_rng_state()
    first = epoch_batches(0, 0)
    assert torch.equal(torch.get_rng_state(), state)
    again = epoch_batches(0, 0)
    other_epoch = epoch_batches(0, 1)
    assert [x.shape[0] for x, _ in first] == [32, 28]
    assert all(torch.equal(a[0], b[0]) and torch.equal(a[1], b[1]) for a, b in zip(first, again))
    assert not torch.equal(first[0][1], other_epoch[0][1])
    resumed = list(batches(dataset, 32, True, augment, seed=0, epoch=0, start=1))  # resume mid-epoch
    assert len(resumed) == 1 and torch.equal(resumed[0][0], first[1][0]) and torch.equal(resumed[0][1], first[1][1])
    assert torch.equal(torch.cat([y for _, y in first]).sort().values, dataset.labels.sort().values)


@pytest.mark.parametrize("length, world_size, batch_size", [(100, 3, 8), (64, 2, 16), (7, 4, 2)])
def test_shards_cover_the_dataset_exactly_once_across_ranks(length, world_size, batch_size):
    dataset = indexed_dataset(length)
    seen = []
    for rank in range(world_size):
        labels = [y for _, y in batches(dataset, batch_size, True, seed=5, epoch=2, rank=rank, world_size=world_size)]
        assert len(labels) == num_batches(dataset, batch_size, rank=rank, world_size=world_size)
        seen += torch.cat(labels).tolist()
    assert sorted(seen) == list(range(length))


def test_drop_last_gives_every_rank_the_same_number_of_full_batches():
    dataset = indexed_dataset(103)
    counts = set()
    for rank in range(4):
        sizes = [y.numel() for _, y in batches(dataset, 8, True, drop_last=True, rank=rank, world_size=4)]
        assert sizes and set(sizes) == {8}
        counts.add(len(sizes))
        assert len(sizes) == num_batches(103, 8, drop_last=True, rank=rank, world_size=4)
    assert counts == {3}  # 25 samples per rank, 3 full batches
    assert len(shard_indices(103, True, drop_last=True, rank=0, world_size=4)) == 25


def test_image_follows_its_label_through_the_batch():
    dataset = indexed_dataset(50)
    for x, y in batches(dataset, 7, shuffle=True, seed=1):
        torch.testing.assert_close(x[:, 0, 0, 0], ((y % 256).float() / 255 - 0.5) / 0.25)


def test_augment_statistics_override_the_datasets(cifar):
    """CKDSNN normalises CIFAR-100 with CIFAR-10's statistics: the augment's own mean/std win."""
    augment = GpuAugment(mean=(0.5,) * 3, std=(0.5,) * 3).eval()
    x, _ = next(batches(cifar, 16, shuffle=False, augment=augment))
    torch.testing.assert_close(x, cifar.images[:16].float() / 127.5 - 1)


def test_dataset_moves_to_a_device_once(cifar):
    first = cifar.on_device("cpu")
    assert cifar.on_device(torch.device("cpu"))[0] is first[0]


def test_bad_arguments_are_clear_errors(cifar):
    with pytest.raises(SpikeDistillError, match="rank must be in"):
        next(batches(cifar, 8, True, rank=2, world_size=2))
    with pytest.raises(SpikeDistillError, match="no mean/std"):
        GpuAugment()(cifar.images[:2])


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_augmentation_runs_on_the_batch_device_and_matches_itself(cifar):
    augment = GpuAugment(autoaugment=True, cutout=16)
    x, _ = next(batches(cifar, 64, True, augment, device="cuda"))
    y, _ = next(batches(cifar, 64, True, augment, device="cuda"))
    assert x.device.type == "cuda" and torch.equal(x, y)


def test_missing_kornia_is_one_line_naming_the_extra_and_the_way_out(monkeypatch):
    import sys

    for name in [m for m in sys.modules if m == "kornia" or m.startswith("kornia.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "kornia", None)  # import kornia... now raises ImportError
    monkeypatch.setitem(sys.modules, "kornia.augmentation", None)
    augment = GpuAugment(crop_padding=4, flip=True, mean=(0.5,) * 3, std=(0.25,) * 3)
    with pytest.raises(SpikeDistillError) as error:
        augment(torch.zeros(2, 3, 8, 8, dtype=torch.uint8))
    message = str(error.value)
    assert "spikedistill[augment]" in message and "data.augment.crop_padding=0" in message and "\n" not in message
    # without any augmentation kornia is not needed
    plain = GpuAugment(crop_padding=0, flip=False, mean=(0.5,) * 3, std=(0.25,) * 3)
    assert plain(torch.full((1, 3, 2, 2), 255, dtype=torch.uint8)).eq(2.0).all()


# --- random resized crop (ImageNet training crop) ----------------------------------------------------

def test_crop_and_resize_equals_slicing_then_bilinear_interpolation():
    import torch.nn.functional as F

    from spikedistill.data.augment import crop_and_resize

    g = torch.Generator().manual_seed(0)
    images = torch.rand(3, 2, 12, 10, generator=g, dtype=torch.float64)
    boxes = torch.tensor([[0, 0, 12, 10], [2, 3, 4, 4], [1, 2, 9, 7]], dtype=torch.float64)  # (top, left, h, w)
    out = crop_and_resize(images, boxes, 6)
    for image, (top, left, h, w), got in zip(images, boxes.long().tolist(), out):
        expected = F.interpolate(image[None, :, top:top + h, left:left + w], size=(6, 6), mode="bilinear",
                                 align_corners=False)[0]
        torch.testing.assert_close(got, expected)


def torchvision_get_params(height, width, rng, scale=(0.08, 1.0), ratio=(3 / 4, 4 / 3)):
    """RandomResizedCrop.get_params written out per image: 10 draws, the first that fits, else the clamped centre."""
    import math

    for _ in range(10):
        target = height * width * rng.uniform(*scale)
        aspect = math.exp(rng.uniform(math.log(ratio[0]), math.log(ratio[1])))
        w, h = round(math.sqrt(target * aspect)), round(math.sqrt(target / aspect))
        if 0 < w <= width and 0 < h <= height:
            return rng.randint(0, height - h), rng.randint(0, width - w), h, w
    raise AssertionError("the fallback is checked separately")


def test_resized_crop_boxes_follow_torchvision_sampling_and_fallback():
    import random

    from spikedistill.data.augment import resized_crop_boxes

    torch.manual_seed(0)
    boxes = resized_crop_boxes(4000, 64, 48)
    top, left, h, w = boxes.unbind(1)
    assert (top >= 0).all() and (left >= 0).all() and (top + h <= 64).all() and (left + w <= 48).all()
    rng = random.Random(0)
    reference = torch.tensor([torchvision_get_params(64, 48, rng) for _ in range(4000)], dtype=torch.float64)
    # Same distribution as the per-image algorithm: mean area fraction, ratio, height and position agree.
    for got, want in ((h * w / 3072, reference[:, 2] * reference[:, 3] / 3072), (torch.log(w / h),
                      torch.log(reference[:, 3] / reference[:, 2])), (h / 64, reference[:, 2] / 64),
                      (top / 64, reference[:, 0] / 64)):
        assert got.double().mean().item() == pytest.approx(want.mean().item(), abs=0.015)
    assert (h * w / 3072).min() > 0.07
    # No draw fits a 4×400 strip: the fallback is its centre with the ratio clamped to 4/3 (4 × 5 at left 197).
    assert resized_crop_boxes(3, 4, 400, scale=(0.9, 1.0)).tolist() == [[0.0, 197.0, 4.0, 5.0]] * 3


def test_gpu_augment_resized_crop_outputs_the_crop_size():
    images = torch.randint(0, 256, (5, 3, 40, 40), dtype=torch.uint8)
    augment = GpuAugment(crop_padding=0, flip=True, resized_crop=24, mean=(0.5,) * 3, std=(0.25,) * 3)
    torch.manual_seed(1)
    out = augment(images)
    assert out.shape == (5, 3, 24, 24) and out.dtype == torch.float32
    assert out.min() >= -2.0 - 1e-6 and out.max() <= 2.0 + 1e-6  # (x − 0.5)/0.25 with x in [0, 1]
    assert augment.eval()(images).shape == (5, 3, 40, 40)  # eval: normalise only (the test set is pre-cropped)
    with pytest.raises(SpikeDistillError, match="replaces the padded crop"):
        GpuAugment(crop_padding=4, resized_crop=24)
