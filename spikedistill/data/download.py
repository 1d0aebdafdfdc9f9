"""Fetch a tarball, check its MD5, and extract it atomically. Runs only when the user asks.

Re-use: an extracted directory that is already there means no request at all; a verified tarball
that is already there is extracted without a request. Failure leaves nothing half-done: the download
goes to a ``.<pid>.part`` file that is deleted on a checksum mismatch, and extraction happens in a temporary
directory that is renamed into place only when complete.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tarfile
import tempfile
import urllib.request
from pathlib import Path

from ..errors import SpikeDistillError


def file_hash(path: Path, algorithm: str = "md5", chunk: int = 1 << 20) -> str:
    """Hex digest of a file, read in chunks."""
    digest = hashlib.new(algorithm)
    with open(path, "rb") as f:
        while block := f.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def download_and_extract(url: str, md5: str, root: Path, folder: str) -> Path:
    """Make ``root/folder`` exist by fetching ``url`` (a .tar.gz holding ``folder``) and extracting it.

    ``url`` and ``md5`` are arguments so tests can serve a small tarball from a local server.
    Returns ``root/folder``.
    """
    root = Path(root)
    target = root / folder
    if target.is_dir():
        return target
    root.mkdir(parents=True, exist_ok=True)
    archive = root / Path(url.split("?")[0]).name
    if not (archive.is_file() and file_hash(archive) == md5):
        _fetch(url, md5, archive)
    _extract(archive, root, folder)
    return target


def _fetch(url: str, md5: str, archive: Path) -> None:
    part = archive.with_name(f"{archive.name}.{os.getpid()}.part")  # unique: DDP ranks may race
    try:
        with urllib.request.urlopen(url, timeout=60) as response, open(part, "wb") as f:
            shutil.copyfileobj(response, f, length=1 << 20)
    except (OSError, ValueError) as error:  # URLError is an OSError
        part.unlink(missing_ok=True)
        raise SpikeDistillError(f"download of {url} failed ({error}); check the network or the URL") from None
    got = file_hash(part)
    if got != md5:
        part.unlink(missing_ok=True)
        raise SpikeDistillError(
            f"checksum mismatch for {url}: md5 {got}, expected {md5}; the file was deleted, try again"
        )
    os.replace(part, archive)


def _extract(archive: Path, root: Path, folder: str) -> None:
    staging = Path(tempfile.mkdtemp(prefix=f".{folder}.", dir=root))
    try:
        try:
            with tarfile.open(archive) as tar:
                if hasattr(tarfile, "data_filter"):  # refuses absolute paths and links out of the folder
                    tar.extractall(staging, filter="data")
                else:  # Python < 3.10.12 has no filters: check member names ourselves
                    _check_members(tar, archive)
                    tar.extractall(staging)
        except (tarfile.TarError, OSError) as error:
            raise SpikeDistillError(f"cannot extract {archive} ({error}); delete it and download again") from None
        if not (staging / folder).is_dir():
            raise SpikeDistillError(f"{archive} does not contain the folder '{folder}'; delete it and download again")
        try:
            os.replace(staging / folder, root / folder)
        except OSError:
            if not (root / folder).is_dir():  # else another process got there first: use its copy
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _check_members(tar: tarfile.TarFile, archive: Path) -> None:
    for member in tar.getmembers():
        name = Path(member.name)
        if name.is_absolute() or ".." in name.parts or member.islnk() or member.issym():
            raise SpikeDistillError(f"{archive} contains an unsafe entry '{member.name}'; delete it and download again")
