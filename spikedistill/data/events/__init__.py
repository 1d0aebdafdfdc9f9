"""Event-camera data: raw readers, events → frames, datasets, DVS augmentation, any-T frame policies
(scored by ``spikedistill.evaluate.fullrange_accuracy_events``).

    from spikedistill.data import load_dataset
    train = load_dataset("nmnist", split="train", timesteps=10)        # EventDataset, frames [N,T,2,H,W]
    frames = frames_at(test, 4, policy="prefix")                      # the first 4 frames per sample

See docs/events.md for the formats, the binning rules and the any-T policy (default ``"prefix"``).
Importing this package registers ``nmnist``, ``cifar10dvs`` and ``dvsgesture`` in ``DATASETS``.
"""

from .augment import EventAugment, cutout_frames, flip_frames, roll_frames, rotate_frames
from .dataset import EVENT_DATASETS, EventDataset, load_event_dataset, make_event_dataset
from .nmnist import load_nmnist, load_nmnist_recordings
from .cifar10dvs import CIFAR10DVS_CLASSES, cifar10dvs_files, cifar10dvs_split, load_cifar10dvs
from .dvsgesture import GESTURE_CLASSES, load_dvs_gesture
from .frames import SPLIT_BY, bin_events, events_to_frames, resize_frames
from .fullrange import ANY_T_POLICIES, DEFAULT_ANY_T_POLICY, check_policy, frame_batches, frames_at
from .readers import (EVENT_DTYPE, decode_dvs128_address, make_events, parse_aedat_header, read_aedat2_raw,
                      read_aedat3_polarity, read_cifar10dvs, read_dvs_gesture, read_gesture_labels, read_nmnist)
from .recordings import EventRecordings

__all__ = [
    "EVENT_DTYPE", "make_events", "read_nmnist", "parse_aedat_header", "read_aedat2_raw", "read_aedat3_polarity",
    "decode_dvs128_address", "read_cifar10dvs", "read_gesture_labels", "read_dvs_gesture",
    "SPLIT_BY", "bin_events", "events_to_frames", "resize_frames",
    "EventRecordings", "EventDataset", "make_event_dataset", "load_event_dataset", "load_nmnist",
    "load_nmnist_recordings", "load_cifar10dvs", "load_dvs_gesture", "cifar10dvs_files", "cifar10dvs_split",
    "EVENT_DATASETS", "CIFAR10DVS_CLASSES", "GESTURE_CLASSES",
    "EventAugment", "flip_frames", "roll_frames", "rotate_frames", "cutout_frames",
    "ANY_T_POLICIES", "DEFAULT_ANY_T_POLICY", "check_policy", "frame_batches", "frames_at",
]
