"""Datasets: the shared JPEG CIFAR-10 decodes bit-exactly, and every loader returns uint8 [N, C, H, W]."""

import hashlib

import numpy as np
import pytest
import torch

from spikedistill.data import ArrayDataset, StreamingDataset, batches, load_dataset
from spikedistill.errors import SpikeDistillError, UnknownNameError

TEST_X_SHA256 = "76b1564d0f1b689c4e3d2c6d6fb2377e41e1cb441a43cb891f36e46fb915890b"
TEST_Y_SHA256 = "bcb0228c70fcd46ed2fcaa2447a1b21141f48d8054ea92b602596e678bf60b99"
TRAIN_X_SHA256 = "5aaf8a2cf2e577ff4dbb15e4f368840fab5aca1812bcc69682005f8dc661d466"
TRAIN_Y_SHA256 = "2b7cd2f24487317614016b72ffd53071c3062f592f0eb300c18a770d41ae1253"


def sha256_nhwc(dataset: ArrayDataset) -> str:
    return hashlib.sha256(dataset.images.permute(0, 2, 3, 1).contiguous().numpy().tobytes()).hexdigest()


def sha256_labels(dataset: ArrayDataset) -> str:
    return hashlib.sha256(dataset.labels.numpy().astype(np.uint8).tobytes()).hexdigest()


@pytest.fixture
def cache(decode_cache):
    """The session's fresh decode cache (conftest.py): the first JPEG test decodes, the rest re-use."""
    return decode_cache


def test_cifar10_jpeg_test_split_decodes_to_published_sha256(data_root, cache):
    dataset = load_dataset("cifar10_jpeg", data_root, "test")
    assert dataset.images.shape == (10_000, 3, 32, 32) and dataset.images.dtype == torch.uint8
    assert sha256_nhwc(dataset) == TEST_X_SHA256
    assert sha256_labels(dataset) == TEST_Y_SHA256
    assert dataset.labels[:10].tolist() == [3, 8, 8, 0, 6, 6, 1, 6, 3, 1]
    assert dataset.num_classes == 10 and dataset.classes[3] == "cat"
    assert dataset.mean == (0.4914, 0.4822, 0.4465) and dataset.std == (0.2023, 0.1994, 0.2010)
    # the decoded array is cached and the cached copy is the same array
    assert len(list(cache.glob("test_jpeg-*-x.npy"))) == 1
    again = load_dataset("cifar10_jpeg", data_root / "cifar10", "test")
    assert torch.equal(again.images, dataset.images)


def test_cifar10_jpeg_train_labels_are_original_order(data_root):
    with np.load(data_root / "cifar10" / "train_jpeg.npz") as npz:
        labels = npz["y"]
    assert labels[:10].tolist() == [6, 9, 9, 4, 1, 1, 2, 7, 8, 3]
    assert hashlib.sha256(labels.tobytes()).hexdigest() == TRAIN_Y_SHA256


def test_cifar10_jpeg_train_split_decodes_to_published_sha256(data_root, cache):
    dataset = load_dataset("cifar10_jpeg", data_root, "train")
    assert sha256_nhwc(dataset) == TRAIN_X_SHA256 and sha256_labels(dataset) == TRAIN_Y_SHA256


def test_jpeg_copy_is_close_to_the_lossless_originals(data_root, cache):
    dataset = load_dataset("cifar10_jpeg", data_root, "test").subset(1000)
    original = load_dataset("npz", data_root / "cifar10" / "lossless_subset.npz", "test")
    assert torch.equal(dataset.labels, original.labels)
    error = (dataset.images.float() - original.images.float()).abs().mean().item()
    assert 3.0 < error < 9.0  # README: 5.8 grey levels on average


def test_missing_jpeg_file_is_one_line_naming_path_and_fix(tmp_path):
    with pytest.raises(SpikeDistillError) as error:
        load_dataset("cifar10_jpeg", tmp_path, "test")
    assert str(tmp_path / "cifar10" / "test_jpeg.npz") in str(error.value)
    assert "--data-root" in str(error.value) and "\n" not in str(error.value)


def test_npz_reads_split_keys_and_uses_training_statistics(data_root):
    path = data_root / "cifar10" / "lossless_subset.npz"
    train = load_dataset("npz", path, "train")
    test = load_dataset("npz", path, "test")
    with np.load(path) as npz:
        x_train, y_test = npz["x_train"], npz["y_test"]
    assert train.images.shape == (4000, 3, 32, 32) and len(test) == 1000
    assert torch.equal(train.images, torch.from_numpy(x_train).permute(0, 3, 1, 2))
    assert test.labels.tolist() == y_test.tolist()
    expected_mean = (x_train / 255.0).mean(axis=(0, 1, 2))
    np.testing.assert_allclose(train.mean, expected_mean, atol=1e-9)
    assert test.mean == train.mean and test.std == train.std  # test normalised with train statistics
    assert abs(train.mean[0] - 0.4914) < 0.01  # a CIFAR-10 sample has CIFAR-10's statistics


def test_npz_plain_x_y_file(tmp_path):
    x = np.random.default_rng(0).integers(0, 256, (12, 5, 6), dtype=np.uint8)  # greyscale NHW
    np.savez(tmp_path / "grey.npz", x=x, y=np.arange(12) % 3)
    dataset = load_dataset("npz", tmp_path / "grey.npz")
    assert dataset.images.shape == (12, 1, 5, 6) and dataset.num_classes == 3
    assert dataset.name == "grey" and len(dataset.mean) == 1


@pytest.mark.parametrize(
    "x, y, complaint",
    [
        (np.zeros((4, 8, 8, 3), np.float32), np.zeros(4, np.int64), "must be uint8"),
        (np.zeros((4, 3, 8, 8, 1), np.uint8), np.zeros(4, np.int64), "must be uint8"),
        (np.zeros((4, 8, 8, 3), np.uint8), np.zeros(5, np.int64), "labels must be integers of shape \\[4\\]"),
    ],
)
def test_npz_with_wrong_shapes_is_a_one_line_error(tmp_path, x, y, complaint):
    np.savez(tmp_path / "bad.npz", x=x, y=y)
    with pytest.raises(SpikeDistillError, match=complaint) as error:
        load_dataset("npz", tmp_path / "bad.npz")
    assert "\n" not in str(error.value)


def test_digits_split_is_fixed_stratified_and_disjoint():
    train, test = load_dataset("digits", split="train"), load_dataset("digits", split="test")
    assert (len(train), len(test)) == (1437, 360)
    assert train.images.shape[1:] == (1, 8, 8) and train.images.dtype == torch.uint8
    assert int(train.images.max()) == 255 and int(train.images.min()) == 0
    train_counts, test_counts = torch.bincount(train.labels), torch.bincount(test.labels)
    assert ((test_counts - 0.2 * (train_counts + test_counts)).abs() <= 1).all()  # stratified: 20 % of each class
    assert torch.equal(load_dataset("digits", split="test").images, test.images)  # same seed, same split
    train_rows = {row.tobytes() for row in train.images.numpy()}
    assert sum(row.tobytes() in train_rows for row in test.images.numpy()) < 5  # disjoint up to duplicate digits
    assert test.mean == train.mean
    reseeded = load_dataset("digits", split="test", seed=1)
    assert not torch.equal(reseeded.images, test.images)


def _write_image_folder(root, images, labels, classes):
    from PIL import Image

    for index, (image, label) in enumerate(zip(images, labels)):
        folder = root / classes[label]
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(image).save(folder / f"{index:04d}.png")


def test_imagefolder_decodes_in_memory_and_streams_the_same_batches(data_root, tmp_path):
    with np.load(data_root / "cifar10" / "lossless_subset.npz") as npz:
        x, y = npz["x_test"][:24], npz["y_test"][:24]
    classes = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
    _write_image_folder(tmp_path / "test", x, y, classes)
    present = sorted({classes[label] for label in y})
    memory = load_dataset("imagefolder", tmp_path, "test", num_workers=0)
    assert memory.classes == present and memory.num_classes == len(present)
    # images come back grouped by class folder, pixels intact (PNG is lossless)
    order = sorted(range(24), key=lambda i: (classes[y[i]], i))
    assert torch.equal(memory.images, torch.from_numpy(x[order]).permute(0, 3, 1, 2))
    assert [present[label] for label in memory.labels] == [classes[y[i]] for i in order]

    streamed = load_dataset("imagefolder", tmp_path, "test", stream=True, num_workers=0)
    assert isinstance(streamed, StreamingDataset) and len(streamed) == 24
    for (xs, ys), (xm, ym) in zip(
        batches(streamed, 10, shuffle=True, seed=3), batches(memory, 10, shuffle=True, seed=3)
    ):
        assert torch.equal(ys, ym) and torch.equal(xs, xm)


def test_a_streamed_epoch_resumes_at_any_batch_and_leaves_the_global_rng_alone():
    """``start=k`` gives the epoch's batches from the k-th on, the same as an uninterrupted epoch, and the
    DataLoader draws its workers' seeds from its own generator: a resumed run's RNG stream is its own."""
    read = lambda index: torch.full((1, 2, 2), index, dtype=torch.uint8)
    streamed = StreamingDataset(read, torch.arange(23) % 3, 3, (0.0,), (1.0,), "counting", num_workers=0)
    torch.manual_seed(7)
    state = torch.get_rng_state()
    whole = [(x.clone(), y.clone()) for x, y in batches(streamed, 4, shuffle=True, seed=1, epoch=2, drop_last=True)]
    assert torch.equal(torch.get_rng_state(), state)
    indices = torch.cat([x[:, 0, 0, 0] for x, _ in whole]).mul(255).round().long()
    assert len(whole) == 5 and len(set(indices.tolist())) == 20  # 20 different samples of 23, shuffled
    assert indices.tolist() != sorted(indices.tolist())
    for start in (1, 3, 5):
        rest = list(batches(streamed, 4, shuffle=True, seed=1, epoch=2, drop_last=True, start=start))
        assert len(rest) == 5 - start
        assert all(torch.equal(x, wx) and torch.equal(y, wy) for (x, y), (wx, wy) in zip(rest, whole[start:]))
    assert torch.equal(torch.get_rng_state(), state)


def test_imagefolder_resize_and_mixed_sizes(tmp_path):
    from PIL import Image

    for index, size in enumerate([(20, 30), (40, 16)]):
        (tmp_path / "train" / f"c{index}").mkdir(parents=True)
        Image.new("RGB", size, (200, 10, 10)).save(tmp_path / "train" / f"c{index}" / "a.jpg")
    with pytest.raises(SpikeDistillError, match="pass size=N"):
        load_dataset("imagefolder", tmp_path, num_workers=0)
    dataset = load_dataset("imagefolder", tmp_path, size=12, num_workers=0)
    assert dataset.images.shape == (2, 3, 12, 12)
    with pytest.raises(SpikeDistillError, match="no 'test' folder"):
        load_dataset("imagefolder", tmp_path, "test")
    # ImageNet's layout: training images kept larger (for the random resized crop), test images at 256 → 224.
    (tmp_path / "val" / "c0").mkdir(parents=True)
    Image.new("RGB", (40, 30), (10, 200, 10)).save(tmp_path / "val" / "c0" / "b.jpg")
    options = dict(size=12, resize=16, train_size=20, num_workers=0)
    assert load_dataset("imagefolder", tmp_path, "train", **options).images.shape == (2, 3, 20, 20)
    assert load_dataset("imagefolder", tmp_path, "test", **options).images.shape == (1, 3, 12, 12)


def test_imagenet_training_crop_is_drawn_from_each_original_every_epoch(tmp_path):
    """train_random_resized_crop: torchvision's RandomResizedCrop on the decoded original (PIL crop, then PIL
    bilinear resize), a fresh box per (seed, epoch, sample); the test split keeps resize → centre crop."""
    from PIL import Image

    from spikedistill.data.augment import resized_crop_boxes

    rng = np.random.default_rng(0)
    originals = {}
    for index in range(6):
        folder = tmp_path / "train" / f"c{index % 2}"
        folder.mkdir(parents=True, exist_ok=True)
        pixels = rng.integers(0, 256, (30, 48, 3), dtype=np.uint8)  # 48 wide, 30 high: more than a centre square
        Image.fromarray(pixels).save(folder / f"{index}.png")
        originals[f"c{index % 2}/{index}.png"] = pixels
    (tmp_path / "val" / "c0").mkdir(parents=True)
    Image.fromarray(originals["c0/0.png"]).save(tmp_path / "val" / "c0" / "v.png")
    options = dict(stream=True, size=12, resize=16, train_random_resized_crop=12, num_workers=0)
    train = load_dataset("imagefolder", tmp_path, "train", **options)
    assert load_dataset("imagefolder", tmp_path, "test", **options)[0][0].shape == (3, 12, 12)

    boxes = []
    for seed in range(40):
        image, _ = train[(0, seed)]
        box = resized_crop_boxes(1, 30, 48, generator=torch.Generator().manual_seed(seed))[0].int().tolist()
        top, left, h, w = box
        expected = (Image.fromarray(originals["c0/0.png"]).crop((left, top, left + w, top + h))
                    .resize((12, 12), Image.BILINEAR))
        assert torch.equal(image, torch.from_numpy(np.array(expected)).permute(2, 0, 1))
        boxes.append(box)
    # boxes reach the strips beyond the 30×30 centre square (columns 0–8 and 39–47)
    assert any(left < 9 or left + w > 39 for _, left, _, w in boxes)

    def epoch(number):
        return torch.cat([x for x, _ in batches(train, 3, shuffle=True, seed=5, epoch=number, num_workers=0)])

    first, again, other = epoch(0), epoch(0), epoch(1)
    assert first.shape == (6, 3, 12, 12) and torch.equal(first, again) and not torch.equal(first, other)
    with pytest.raises(SpikeDistillError, match="needs stream=true"):
        load_dataset("imagefolder", tmp_path, "train", size=12, train_random_resized_crop=12, num_workers=0)


def test_unknown_dataset_and_option_suggest_the_nearest_name():
    with pytest.raises(UnknownNameError, match="did you mean 'cifar10'"):
        load_dataset("cifar01")
    with pytest.raises(SpikeDistillError, match="did you mean 'test_fraction'"):
        load_dataset("digits", test_fractoin=0.3)


def test_subset_by_count_and_indices_keeps_metadata():
    dataset = load_dataset("digits", split="test")
    first = dataset.subset(10)
    picked = dataset.subset([5, 2, 7])
    assert len(first) == 10 and torch.equal(first.images, dataset.images[:10])
    assert picked.labels.tolist() == dataset.labels[[5, 2, 7]].tolist()
    assert picked.mean == dataset.mean and picked.num_classes == 10 and picked.name == "digits"
    sevens = dataset.subset(dataset.labels == 7)  # a boolean mask selects, it is not read as 0/1 indices
    assert len(sevens) == 36 and set(sevens.labels.tolist()) == {7}


@pytest.mark.parametrize("workers", [0, 1])
def test_unreadable_image_while_streaming_is_one_line_naming_the_file(tmp_path, workers):
    """Decoded in a DataLoader worker, the error would arrive as a worker traceback; the user sees one line."""
    from PIL import Image

    folder = tmp_path / "train" / "cat"
    folder.mkdir(parents=True)
    for index in range(3):
        Image.new("RGB", (8, 8), (index, 0, 0)).save(folder / f"{index}.png")
    (folder / "9_broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    dataset = load_dataset("imagefolder", tmp_path, stream=True, num_workers=workers)
    with pytest.raises(SpikeDistillError) as error:
        for _ in batches(dataset, 4, shuffle=False):
            pass
    message = str(error.value)
    assert message.startswith("cannot read image") and "9_broken.png" in message and "remove or replace" in message
    assert "\n" not in message and "Traceback" not in message
