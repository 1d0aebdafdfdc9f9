"""IBM DVS-Gesture (128×128, 11 classes) as frames, registered as ``dvsgesture``.

On disk (``root``, default ``$SPIKEDISTILL_DATA/DvsGesture``): ``userXX_<lighting>.aedat`` +
``userXX_<lighting>_labels.csv`` (the IBM release's ``DvsGesture/`` folder) with ``trials_to_train.txt`` /
``trials_to_test.txt``; without those lists, users 1–23 train and 24–29 test (the official split).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Optional

from ...errors import DataNotFoundError, SpikeDistillError
from ..dataset import DATASETS
from . import dataset as shared
from .dataset import EventDataset
from .readers import read_dvs_gesture
from .recordings import EventRecordings

GESTURE_CLASSES = ("hand_clapping", "right_hand_wave", "left_hand_wave", "right_arm_clockwise",
                   "right_arm_counter_clockwise", "left_arm_clockwise", "left_arm_counter_clockwise",
                   "arm_roll", "air_drums", "air_guitar", "other_gestures")


def gesture_trials(base: Path, split: str) -> list[Path]:
    listing = base / f"trials_to_{split}.txt"
    if listing.is_file():
        names = [line.strip() for line in listing.read_text().splitlines() if line.strip()]
        files = [base / name for name in names]
    else:
        users = range(1, 24) if split == "train" else range(24, 30)
        numbered = ((f, re.match(r"user(\d+)_", f.name)) for f in base.glob("user*.aedat"))
        files = sorted(f for f, match in numbered if match and int(match.group(1)) in users)
    missing = [f.name for f in files if not f.is_file()]
    if missing or not files:
        raise DataNotFoundError(
            f"DVS-Gesture {split} trials missing under {base} ({', '.join(missing[:3]) or 'no user*.aedat files'})",
            base,
            get="extract DvsGesture.tar.gz there")
    return files


@DATASETS.register("dvsgesture")
def load_dvs_gesture(root: Optional[Path] = None, split: str = "train", download: bool = False, timesteps: int = 16,
                     split_by: str = "count", size: Optional[int] = None, cache_dir=None) -> EventDataset:
    """IBM DVS-Gesture (128×128, 11 classes): one recording per labelled gesture of each trial."""
    get = "download DvsGesture.tar.gz from IBM (https://research.ibm.com/interactive/dvsgesture/), extract it"
    shared.refuse_download("dvsgesture", download, get=get)
    timesteps, split_by, size = shared.check_frame_options(timesteps, split_by, size)
    base = shared.dataset_root(root, "DvsGesture", "DVS-Gesture", get=get)
    trials = gesture_trials(base, split)

    def build() -> EventRecordings:
        items = []
        for aedat in trials:
            labels = aedat.with_name(aedat.stem + "_labels.csv")
            if not labels.is_file():
                raise SpikeDistillError(f"DVS-Gesture labels {labels} missing for {aedat.name}; re-extract the dataset")
            items += read_dvs_gesture(aedat, labels)
        return EventRecordings.from_list(items, (128, 128), f"dvsgesture-{split}", GESTURE_CLASSES)

    key = shared.listing_key(f"dvsgesture-{split}", trials + [t.with_name(t.stem + "_labels.csv") for t in trials])
    recordings = shared.cached_recordings(shared.cache_folder(cache_dir), key, build, f"dvsgesture-{split}",
                                          GESTURE_CLASSES)
    return shared.make_event_dataset(recordings, timesteps, split_by, size, shared.cache_folder(cache_dir))
