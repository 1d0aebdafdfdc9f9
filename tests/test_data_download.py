"""The official-format CIFAR reader and the downloader, against a tarball served from 127.0.0.1."""

import hashlib
import http.server
import io
import pickle
import tarfile
import threading

import numpy as np
import pytest
import torch

from spikedistill.data import default_data_root, load_dataset
from spikedistill.errors import SpikeDistillError

PER_BATCH = 40  # 5 train batches of 40 + a test batch of 40 real CIFAR-10 images


def _pickled(obj) -> bytes:
    return pickle.dumps(obj, protocol=2)


def _planar(images_nhwc: np.ndarray) -> np.ndarray:
    return images_nhwc.transpose(0, 3, 1, 2).reshape(len(images_nhwc), 3072)


@pytest.fixture(scope="module")
def lossless():
    path = default_data_root() / "cifar10" / "lossless_subset.npz"
    if not path.is_file():
        pytest.skip(f"{path} not found (set SPIKEDISTILL_DATA)")
    with np.load(path) as npz:
        return {key: npz[key] for key in ("x_train", "y_train", "x_test", "y_test")}


@pytest.fixture(scope="module")
def tarball(lossless) -> bytes:
    """A cifar-10-python.tar.gz in the official layout, holding real images from lossless_subset.npz."""
    members = {}
    for i in range(5):
        part = slice(i * PER_BATCH, (i + 1) * PER_BATCH)
        members[f"data_batch_{i + 1}"] = {
            b"batch_label": f"training batch {i + 1} of 5".encode(),
            b"data": _planar(lossless["x_train"][part]),
            b"labels": lossless["y_train"][part].astype(int).tolist(),
        }
    members["test_batch"] = {
        b"data": _planar(lossless["x_test"][:PER_BATCH]),
        b"labels": lossless["y_test"][:PER_BATCH].astype(int).tolist(),
    }
    names = [b"airplane", b"automobile", b"bird", b"cat", b"deer", b"dog", b"frog", b"horse", b"ship", b"truck"]
    members["batches.meta"] = {b"label_names": names, b"num_vis": 3072}
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, content in members.items():
            data = _pickled(content)
            info = tarfile.TarInfo(f"cifar-10-batches-py/{name}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


@pytest.fixture
def server(tarball):
    """Serves the tarball at /cifar-10-python.tar.gz; ``server.requests`` counts GETs."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            httpd.requests += 1
            if self.path != "/cifar-10-python.tar.gz":
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Length", str(len(tarball)))
            self.end_headers()
            self.wfile.write(tarball)

        def log_message(self, *args):
            pass

    httpd = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    httpd.requests = 0
    httpd.url = f"http://127.0.0.1:{httpd.server_address[1]}/cifar-10-python.tar.gz"
    httpd.md5 = hashlib.md5(tarball).hexdigest()
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield httpd
    httpd.shutdown()
    httpd.server_close()


def test_download_fetches_verifies_and_reads_official_layout(server, lossless, tmp_path):
    train = load_dataset("cifar10", tmp_path, "train", download=True, url=server.url, md5=server.md5)
    test = load_dataset("cifar10", tmp_path, "test", download=True, url=server.url, md5=server.md5)
    assert server.requests == 1  # the test split re-used the first download
    assert (tmp_path / "cifar-10-batches-py" / "data_batch_5").is_file()
    assert len(train) == 5 * PER_BATCH and len(test) == PER_BATCH
    # channel-planar rows decode to exactly the original NHWC pixels
    expected = torch.from_numpy(lossless["x_train"][: 5 * PER_BATCH]).permute(0, 3, 1, 2)
    assert torch.equal(train.images, expected)
    assert train.labels.tolist() == lossless["y_train"][: 5 * PER_BATCH].tolist()
    assert train.labels[:10].tolist() == [6, 9, 9, 4, 1, 1, 2, 7, 8, 3]
    assert test.labels[:10].tolist() == [3, 8, 8, 0, 6, 6, 1, 6, 3, 1]
    assert train.classes[0] == "airplane" and train.num_classes == 10
    assert train.mean == (0.4914, 0.4822, 0.4465)


def test_download_reuses_existing_copy_without_a_request(server, tmp_path):
    load_dataset("cifar10", tmp_path, download=True, url=server.url, md5=server.md5)
    assert server.requests == 1
    again = load_dataset("cifar10", tmp_path, download=True, url=server.url, md5=server.md5)
    assert server.requests == 1 and len(again) == 5 * PER_BATCH


def test_verified_tarball_on_disk_is_extracted_without_a_request(server, tarball, tmp_path):
    (tmp_path / "cifar-10-python.tar.gz").write_bytes(tarball)
    dataset = load_dataset("cifar10", tmp_path, download=True, url=server.url, md5=server.md5)
    assert server.requests == 0 and len(dataset) == 5 * PER_BATCH


def test_checksum_mismatch_is_a_clear_error_and_leaves_nothing_behind(server, tmp_path):
    wrong = "0" * 32
    with pytest.raises(SpikeDistillError, match=f"checksum mismatch .* expected {wrong}") as error:
        load_dataset("cifar10", tmp_path, download=True, url=server.url, md5=wrong)
    assert "\n" not in str(error.value)
    assert server.requests == 1
    assert list(tmp_path.iterdir()) == []  # no .part file, no half-extracted folder


def test_missing_folder_without_download_names_path_and_fix(server, tmp_path):
    with pytest.raises(SpikeDistillError) as error:
        load_dataset("cifar10", tmp_path)
    message = str(error.value)
    assert str(tmp_path / "cifar-10-batches-py") in message and "download=True" in message
    assert "\n" not in message and server.requests == 0  # never downloads unless asked


def test_cifar100_official_layout_fine_and_coarse_labels(lossless, tmp_path):
    folder = tmp_path / "cifar-100-python"
    folder.mkdir()
    x = lossless["x_test"][:30]
    fine = (np.arange(30) * 7) % 100
    for split in ("train", "test"):
        (folder / split).write_bytes(
            _pickled({b"data": _planar(x), b"fine_labels": fine.tolist(), b"coarse_labels": (fine // 5).tolist()})
        )
    (folder / "meta").write_bytes(
        _pickled({b"fine_label_names": [f"f{i}".encode() for i in range(100)],
                  b"coarse_label_names": [f"c{i}".encode() for i in range(20)]})
    )
    dataset = load_dataset("cifar100", tmp_path, "test")
    assert torch.equal(dataset.images, torch.from_numpy(x).permute(0, 3, 1, 2))
    assert dataset.labels.tolist() == fine.tolist() and dataset.num_classes == 100
    assert dataset.mean == (0.5071, 0.4867, 0.4408) and dataset.classes[3] == "f3"
    coarse = load_dataset("cifar100", tmp_path, "train", labels="coarse")
    assert coarse.labels.tolist() == (fine // 5).tolist() and coarse.num_classes == 20


def test_unreachable_url_is_a_clear_error_and_leaves_nothing_behind(server, tmp_path):
    missing = server.url.replace("cifar-10-python", "nothing-here")
    with pytest.raises(SpikeDistillError, match="download of .*nothing-here.* failed") as error:
        load_dataset("cifar10", tmp_path, download=True, url=missing, md5=server.md5)
    assert "\n" not in str(error.value) and list(tmp_path.iterdir()) == []
