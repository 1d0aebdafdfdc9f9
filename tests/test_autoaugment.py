"""The published AutoAugment CIFAR-10 policies: every op of each table against a per-image reference
written from the published definition with Pillow, and the batched policy against the same reference
image by image."""

import math

import numpy as np
import pytest
import torch
from PIL import Image, ImageEnhance, ImageOps

from spikedistill.data import GpuAugment, default_data_root
from spikedistill.data.augment import resolve_autoaugment
from spikedistill.data.autoaugment import POLICIES, AutoAugment, apply_op, get_policy
from spikedistill.errors import SpikeDistillError

# The FR code's CIFAR10Policy, in its own notation: SubPolicy(p1, op1, bin1, p2, op2, bin2).
FR_PUBLISHED = [
    (0.1, "invert", 7, 0.2, "contrast", 6), (0.7, "rotate", 2, 0.3, "translateX", 9),
    (0.8, "sharpness", 1, 0.9, "sharpness", 3), (0.5, "shearY", 8, 0.7, "translateY", 9),
    (0.5, "autocontrast", 8, 0.9, "equalize", 2), (0.2, "shearY", 7, 0.3, "posterize", 7),
    (0.4, "color", 3, 0.6, "brightness", 7), (0.3, "sharpness", 9, 0.7, "brightness", 9),
    (0.6, "equalize", 5, 0.5, "equalize", 1), (0.6, "contrast", 7, 0.6, "sharpness", 5),
    (0.7, "color", 7, 0.5, "translateX", 8), (0.3, "equalize", 7, 0.4, "autocontrast", 8),
    (0.4, "translateY", 3, 0.2, "sharpness", 6), (0.9, "brightness", 6, 0.2, "color", 8),
    (0.5, "solarize", 2, 0.0, "invert", 3), (0.2, "equalize", 0, 0.6, "autocontrast", 0),
    (0.2, "equalize", 8, 0.8, "equalize", 4), (0.9, "color", 9, 0.6, "equalize", 6),
    (0.8, "autocontrast", 4, 0.2, "solarize", 8), (0.1, "brightness", 3, 0.7, "color", 0),
    (0.4, "solarize", 5, 0.9, "autocontrast", 3), (0.9, "translateY", 9, 0.7, "translateY", 9),
    (0.9, "autocontrast", 2, 0.8, "solarize", 3), (0.8, "equalize", 8, 0.1, "invert", 3),
    (0.7, "translateY", 9, 0.9, "autocontrast", 1),
]
FR_RANGES = {
    "shearX": np.linspace(0, 0.3, 10), "shearY": np.linspace(0, 0.3, 10),
    "translateX": np.linspace(0, 150 / 331, 10), "translateY": np.linspace(0, 150 / 331, 10),
    "rotate": np.linspace(0, 30, 10), "color": np.linspace(0.0, 0.9, 10),
    "posterize": np.round(np.linspace(8, 4, 10), 0).astype(np.int32), "solarize": np.linspace(256, 0, 10),
    "contrast": np.linspace(0.0, 0.9, 10), "sharpness": np.linspace(0.0, 0.9, 10),
    "brightness": np.linspace(0.0, 0.9, 10), "autocontrast": [0] * 10, "equalize": [0] * 10, "invert": [0] * 10,
}

# torchvision's AutoAugmentPolicy.CIFAR10, in its own notation: ((op, p, bin or None), (op, p, bin or None)).
TORCHVISION_PUBLISHED = [
    (("Invert", 0.1, None), ("Contrast", 0.2, 6)), (("Rotate", 0.7, 2), ("TranslateX", 0.3, 9)),
    (("Sharpness", 0.8, 1), ("Sharpness", 0.9, 3)), (("ShearY", 0.5, 8), ("TranslateY", 0.7, 9)),
    (("AutoContrast", 0.5, None), ("Equalize", 0.9, None)), (("ShearY", 0.2, 7), ("Posterize", 0.3, 7)),
    (("Color", 0.4, 3), ("Brightness", 0.6, 7)), (("Sharpness", 0.3, 9), ("Brightness", 0.7, 9)),
    (("Equalize", 0.6, None), ("Equalize", 0.5, None)), (("Contrast", 0.6, 7), ("Sharpness", 0.6, 5)),
    (("Color", 0.7, 7), ("TranslateX", 0.5, 8)), (("Equalize", 0.3, None), ("AutoContrast", 0.4, None)),
    (("TranslateY", 0.4, 3), ("Sharpness", 0.2, 6)), (("Brightness", 0.9, 6), ("Color", 0.2, 8)),
    (("Solarize", 0.5, 2), ("Invert", 0.0, None)), (("Equalize", 0.2, None), ("AutoContrast", 0.6, None)),
    (("Equalize", 0.2, None), ("Equalize", 0.6, None)), (("Color", 0.9, 9), ("Equalize", 0.6, None)),
    (("AutoContrast", 0.8, None), ("Solarize", 0.2, 8)), (("Brightness", 0.1, 3), ("Color", 0.7, 0)),
    (("Solarize", 0.4, 5), ("AutoContrast", 0.9, None)), (("TranslateY", 0.9, 9), ("TranslateY", 0.7, 9)),
    (("AutoContrast", 0.9, None), ("Solarize", 0.2, 3)), (("Equalize", 0.3, None), ("Invert", 0.1, None)),
    (("TranslateY", 0.7, 9), ("AutoContrast", 0.9, None)),
]
TV_SIGNED = {"ShearX", "ShearY", "TranslateX", "TranslateY", "Rotate", "Brightness", "Color", "Contrast", "Sharpness"}
OUR_NAME = {"shearX": "shear_x", "shearY": "shear_y", "translateX": "translate_x", "translateY": "translate_y",
            "AutoContrast": "autocontrast", "ShearX": "shear_x", "ShearY": "shear_y", "TranslateX": "translate_x",
            "TranslateY": "translate_y"}


def ours(name: str) -> str:
    return OUR_NAME.get(name, name.lower())


def tv_magnitude(op: str, bin: int, width: int, height: int) -> float:
    """torchvision's ``_augmentation_space(10, (height, width))`` at ``bin`` (float32 bins, ``.item()``)."""
    space = {
        "ShearX": torch.linspace(0.0, 0.3, 10), "ShearY": torch.linspace(0.0, 0.3, 10),
        "TranslateX": torch.linspace(0.0, 150.0 / 331.0 * width, 10),
        "TranslateY": torch.linspace(0.0, 150.0 / 331.0 * height, 10),
        "Rotate": torch.linspace(0.0, 30.0, 10), "Brightness": torch.linspace(0.0, 0.9, 10),
        "Color": torch.linspace(0.0, 0.9, 10), "Contrast": torch.linspace(0.0, 0.9, 10),
        "Sharpness": torch.linspace(0.0, 0.9, 10),
        "Posterize": 8 - (torch.arange(10) / ((10 - 1) / 4)).round().int(), "Solarize": torch.linspace(255.0, 0.0, 10),
    }
    return float(space[op][bin].item()) if op in space else 0.0


def fr_reference(image: Image.Image, op: str, magnitude: float, sign: int) -> Image.Image:
    """One op of the FR code's SubPolicy on a PIL image, from its definition (fill (128, 128, 128))."""
    fill = (128, 128, 128)
    if op == "shearX":
        return image.transform(image.size, Image.AFFINE, (1, magnitude * sign, 0, 0, 1, 0), Image.BICUBIC,
                               fillcolor=fill)
    if op == "shearY":
        return image.transform(image.size, Image.AFFINE, (1, 0, 0, magnitude * sign, 1, 0), Image.BICUBIC,
                               fillcolor=fill)
    if op == "translateX":
        return image.transform(image.size, Image.AFFINE, (1, 0, magnitude * image.size[0] * sign, 0, 1, 0),
                               fillcolor=fill)
    if op == "translateY":
        return image.transform(image.size, Image.AFFINE, (1, 0, 0, 0, 1, magnitude * image.size[1] * sign),
                               fillcolor=fill)
    if op == "rotate":
        rotated = image.convert("RGBA").rotate(magnitude)
        return Image.composite(rotated, Image.new("RGBA", rotated.size, (128,) * 4), rotated).convert(image.mode)
    enhance = {"color": ImageEnhance.Color, "contrast": ImageEnhance.Contrast, "sharpness": ImageEnhance.Sharpness,
               "brightness": ImageEnhance.Brightness}
    if op in enhance:
        return enhance[op](image).enhance(1 + magnitude * sign)
    if op == "posterize":
        return ImageOps.posterize(image, int(magnitude))
    if op == "solarize":
        return ImageOps.solarize(image, magnitude)
    return {"autocontrast": ImageOps.autocontrast, "equalize": ImageOps.equalize, "invert": ImageOps.invert}[op](image)


def tv_reference(image: Image.Image, op: str, magnitude: float) -> Image.Image:
    """One op of torchvision's AutoAugment on a PIL image (nearest neighbour, fill 0), from its definition:
    geometry through ``F.affine``'s inverse matrix with centre [0, 0] and ``Image.rotate``."""
    if op in ("ShearX", "ShearY"):
        shear = math.tan(math.atan(magnitude))
        matrix = (1, shear, 0, 0, 1, 0) if op == "ShearX" else (1, 0, 0, shear, 1, 0)
        return image.transform(image.size, Image.AFFINE, matrix, Image.NEAREST, fillcolor=0)
    if op in ("TranslateX", "TranslateY"):
        shift = int(magnitude)
        matrix = (1, 0, -shift, 0, 1, 0) if op == "TranslateX" else (1, 0, 0, 0, 1, -shift)
        return image.transform(image.size, Image.AFFINE, matrix, Image.NEAREST, fillcolor=0)
    if op == "Rotate":
        return image.rotate(magnitude, Image.NEAREST, expand=False, fillcolor=0)
    enhance = {"Brightness": ImageEnhance.Brightness, "Color": ImageEnhance.Color, "Contrast": ImageEnhance.Contrast,
               "Sharpness": ImageEnhance.Sharpness}
    if op in enhance:
        return enhance[op](image).enhance(1.0 + magnitude)
    if op == "Posterize":
        return ImageOps.posterize(image, int(magnitude))
    if op == "Solarize":
        return ImageOps.solarize(image, magnitude)
    return {"AutoContrast": ImageOps.autocontrast, "Equalize": ImageOps.equalize, "Invert": ImageOps.invert}[op](image)


@pytest.fixture(scope="module")
def images() -> np.ndarray:
    """12 real CIFAR-10 images (HWC uint8), or random ones with a few flat and low-contrast ones."""
    path = default_data_root() / "cifar10" / "lossless_subset.npz"
    if path.is_file():
        with np.load(path) as npz:
            picked = npz["x_test"][:10].copy()
    else:
        picked = np.random.default_rng(0).integers(0, 256, (10, 32, 32, 3), dtype=np.uint8)
    flat = np.full((1, 32, 32, 3), 77, dtype=np.uint8)  # one level: autocontrast / equalize leave it alone
    narrow = np.random.default_rng(1).integers(100, 104, (1, 32, 32, 3), dtype=np.uint8)
    return np.concatenate([picked, flat, narrow])


def as_levels(arrays) -> torch.Tensor:
    return torch.from_numpy(np.stack([np.asarray(a) for a in arrays])).permute(0, 3, 1, 2).float()


def distinct_ops(table, index):
    return sorted({(entry[index], entry[index + 2]) for entry in table})


@pytest.mark.parametrize("op,bin", sorted({(o, b) for e in FR_PUBLISHED for o, b in ((e[1], e[2]), (e[4], e[5]))}))
def test_each_fr_op_equals_the_published_pil_op_image_by_image(images, op, bin):
    policy = get_policy("fr_cifar10")
    x = as_levels(images)
    for sign in (1, -1):
        published = float(FR_RANGES[op][bin])
        magnitude = policy.magnitude(ours(op), bin, (32, 32))
        signed = ours(op) in policy.signed
        signed_magnitude = torch.full((len(images),), magnitude * (sign if signed else 1), dtype=torch.float64)
        ours_out = apply_op(policy, ours(op), x, signed_magnitude)
        reference = as_levels([fr_reference(Image.fromarray(image), op, published, sign) for image in images])
        assert torch.equal(ours_out, reference), f"{op} bin {bin} sign {sign}"


@pytest.mark.parametrize("op,bin",
                         sorted({(o, b if b is not None else 0) for e in TORCHVISION_PUBLISHED for o, _, b in e}))
def test_each_torchvision_op_equals_the_published_pil_op_image_by_image(images, op, bin):
    policy = get_policy("torchvision_cifar10")
    x = as_levels(images)
    for sign in (1, -1):
        published = tv_magnitude(op, bin, 32, 32) * (sign if op in TV_SIGNED else 1)
        magnitude = policy.magnitude(ours(op), bin, (32, 32)) * (sign if ours(op) in policy.signed else 1)
        ours_out = apply_op(policy, ours(op), x, torch.full((len(images),), magnitude, dtype=torch.float64))
        reference = as_levels([tv_reference(Image.fromarray(image), op, published) for image in images])
        assert torch.equal(ours_out, reference), f"{op} bin {bin} sign {sign}"


def test_policy_tables_are_the_published_ones():
    fr = POLICIES["fr_cifar10"]
    assert [(p1, ours(o1), b1, p2, ours(o2), b2) for p1, o1, b1, p2, o2, b2 in FR_PUBLISHED] == [
        (a[1], a[0], a[2], b[1], b[0], b[2]) for a, b in fr.table]
    assert fr.fill == 128 and "rotate" not in fr.signed  # the FR code rotates counter-clockwise only
    tv = POLICIES["torchvision_cifar10"]
    assert [((ours(a[0]), a[1]), (ours(b[0]), b[1])) for a, b in TORCHVISION_PUBLISHED] == [
        ((a[0], a[1]), (b[0], b[1])) for a, b in tv.table]
    for published, entry in zip(TORCHVISION_PUBLISHED, tv.table):  # bins of the ops that take a magnitude
        for (op, _, bin), (_, _, our_bin) in zip(published, entry):
            if bin is not None:
                assert bin == our_bin, op
    assert tv.fill == 0 and {ours(op) for op in TV_SIGNED} == set(tv.signed)


@pytest.mark.parametrize("name", ["fr_cifar10", "torchvision_cifar10"])
def test_batched_policy_equals_the_published_policy_run_image_by_image(images, name):
    """Same draws (sub-policy, apply flags, signs), then the published ops one image at a time."""
    augment = AutoAugment(name)
    batch = np.concatenate([images] * 6)  # 72 images: most sub-policies are drawn
    torch.manual_seed(3)
    choice, applies, signs = augment.draw(len(batch))
    out = augment.apply(torch.from_numpy(batch).permute(0, 3, 1, 2).float() / 255, choice, applies, signs)
    expected = []
    for n, image in enumerate(batch):
        picture = Image.fromarray(image)
        for stage in range(2):
            if not applies[n, stage]:
                continue
            sign = int(signs[n, stage])
            if name == "fr_cifar10":
                entry = FR_PUBLISHED[int(choice[n])]
                op, bin = entry[1 + 3 * stage], entry[2 + 3 * stage]
                picture = fr_reference(picture, op, float(FR_RANGES[op][bin]), sign)
            else:
                op, _, bin = TORCHVISION_PUBLISHED[int(choice[n])][stage]
                magnitude = tv_magnitude(op, bin or 0, 32, 32) * (sign if op in TV_SIGNED else 1)
                picture = tv_reference(picture, op, magnitude)
        expected.append(np.asarray(picture))
    assert torch.equal(torch.round(out * 255), as_levels(expected))
    assert len(set(choice.tolist())) > 15 and applies.any(0).all()


def test_draws_follow_the_table_probabilities():
    augment = AutoAugment("fr_cifar10")
    torch.manual_seed(0)
    choice, applies, signs = augment.draw(20000)
    table = torch.tensor([[p for _, p, _ in entry] for entry in augment.policy.table])
    expected = table[choice]
    assert torch.bincount(choice, minlength=25).min() > 600  # uniform over 25: 800 each
    assert (applies.float().mean(0) - expected.mean(0)).abs().max() < 0.02
    assert not applies[choice == 14, 1].any()  # probability 0.0: invert in sub-policy 15 never runs
    assert abs(signs.mean().item()) < 0.03


def test_autoaugment_setting_names_the_policy():
    assert resolve_autoaugment(True) == "fr_cifar10" and resolve_autoaugment(False) is None
    assert resolve_autoaugment("torchvision_cifar10") == "torchvision_cifar10"
    assert GpuAugment(autoaugment=True).autoaugment == "fr_cifar10"
    with pytest.raises(SpikeDistillError, match="did you mean 'fr_cifar10'"):
        GpuAugment(autoaugment="fr_cifar1")


def test_grey_image_rejected_in_one_line():
    with pytest.raises(SpikeDistillError, match="needs RGB images"):
        AutoAugment("fr_cifar10")(torch.zeros(2, 1, 8, 8))


def test_autoaugment_needs_torch_only(monkeypatch, images):
    import sys

    for name in [m for m in sys.modules if m == "kornia" or m.startswith("kornia.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "kornia", None)  # import kornia... now raises ImportError
    monkeypatch.setitem(sys.modules, "kornia.augmentation", None)
    augment = GpuAugment(crop_padding=0, flip=False, autoaugment="torchvision_cifar10", mean=(0.0,) * 3, std=(1.0,) * 3)
    batch = torch.from_numpy(images).permute(0, 3, 1, 2).contiguous()
    torch.manual_seed(0)
    out = augment(batch)
    assert out.shape == (12, 3, 32, 32) and not torch.equal(out, batch.float() / 255)
