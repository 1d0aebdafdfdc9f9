"""Per-epoch records: ``metrics.csv`` (one row per epoch) and TensorBoard events when installed, plus
TensorBoard scalars every N optimizer steps within an epoch (:meth:`MetricsLog.step_scalars`)."""

from __future__ import annotations

import csv
from pathlib import Path

from ..errors import SpikeDistillError


class MetricsLog:
    """Epoch rows of ``run_dir/metrics.csv``. Every row rewrites the whole (small) file atomically, so a
    crash, a kill or a full disk leaves the earlier rows and never half a line; on resume, rows of epochs
    to be redone are dropped."""

    def __init__(self, run_dir: Path, start_epoch: int, tensorboard: bool = True):
        self.path = Path(run_dir) / "metrics.csv"
        self.columns: list[str] | None = None
        self.rows: list[dict] = []
        if self.path.exists():
            self.columns, rows = read_rows(self.path)
            self.rows = [r for r in rows if int(r["epoch"]) <= start_epoch]  # epochs count from 1
            self._rewrite()
        self.writer = None
        if tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError:  # tensorboard is optional: pip install spikedistill[logging]
                SummaryWriter = None
            if SummaryWriter is not None:
                self.writer = SummaryWriter(str(Path(run_dir) / "tensorboard"))

    def _rewrite(self) -> None:
        if not self.rows:
            self.path.unlink(missing_ok=True)
            return
        import io

        from ..io import atomic_write_text

        text = io.StringIO(newline="")
        writer = csv.DictWriter(text, fieldnames=self.columns, restval="")
        writer.writeheader()
        writer.writerows(self.rows)
        atomic_write_text(text.getvalue(), self.path)  # a crash or a full disk keeps the earlier rows

    def write(self, row: dict) -> None:
        """Add ``row``; a row with new columns (the first tested epoch under ``log.eval_every > 1``)
        widens the file to the union of columns, earlier rows left empty there — no value is dropped."""
        self.columns = self.columns or []
        self.columns += [k for k in row if k not in self.columns]
        self.rows.append({k: _fmt(v) for k, v in row.items()})
        self._rewrite()
        if self.writer is not None:
            for key, value in row.items():
                if key != "epoch" and isinstance(value, (int, float)):
                    self.writer.add_scalar(key.replace("test_top1_t", "test_top1/t"), value, row["epoch"])
            self.writer.flush()

    def step_scalars(self, step: int, values: dict, every: int) -> bool:
        """TensorBoard scalars at optimizer step ``step`` (counted over the run, from 1), written when
        ``step`` is a multiple of ``every`` (0 or less: never). Tags are ``step/<name>`` so they do not
        share a chart with the per-epoch scalars, whose x axis is the epoch. Tensor values (e.g. the
        loss) are read only on the steps that are written: one device sync per ``every`` steps.
        Returns whether anything was written (nothing without tensorboard)."""
        if self.writer is None or every <= 0 or step % every:
            return False
        for key, value in values.items():
            value = value.item() if hasattr(value, "item") else value
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                self.writer.add_scalar(f"step/{key}", value, step)
        return True

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


def _fmt(value):
    return f"{value:.6g}" if isinstance(value, float) else value


def read_rows(path: Path) -> tuple[list[str], list[dict]]:
    """The columns and whole rows of a ``metrics.csv``. A short or overlong line (half a row, left by a
    writer that was killed mid-line) is dropped: its epoch is run again or was never finished."""
    with path.open(newline="") as f:
        reader = csv.DictReader(f)
        columns = list(reader.fieldnames or [])
        rows = [r for r in reader if None not in r and None not in r.values()]
    if "epoch" not in columns or not all(r["epoch"].isdigit() for r in rows):
        raise SpikeDistillError(f"'{path}' is not a metrics log this run wrote (no integer 'epoch' column); move it "
                                "aside and resume again (the checkpoints are intact)")
    return columns, rows
