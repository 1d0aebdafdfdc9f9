"""Per-epoch records: ``metrics.csv`` (one row per epoch) and TensorBoard events when installed, plus
TensorBoard scalars every N optimizer steps within an epoch (:meth:`MetricsLog.step_scalars`)."""

from __future__ import annotations

import csv
from pathlib import Path


class MetricsLog:
    """Appends epoch rows to ``run_dir/metrics.csv``; on resume, rows of epochs to be redone are dropped."""

    def __init__(self, run_dir: Path, start_epoch: int, tensorboard: bool = True):
        self.path = Path(run_dir) / "metrics.csv"
        self.columns: list[str] | None = None
        if self.path.exists():
            with self.path.open(newline="") as f:
                rows = [r for r in csv.DictReader(f) if int(r["epoch"]) <= start_epoch]  # epochs count from 1
                self.columns = list(rows[0]) if rows else None
            self._rewrite(rows)
        self.writer = None
        if tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError:  # tensorboard is optional: pip install spikedistill[logging]
                SummaryWriter = None
            if SummaryWriter is not None:
                self.writer = SummaryWriter(str(Path(run_dir) / "tensorboard"))

    def _rewrite(self, rows: list[dict], columns: list[str] | None = None) -> None:
        if not rows:
            self.path.unlink()
            return
        import io

        from ..io import atomic_write_text

        text = io.StringIO(newline="")
        writer = csv.DictWriter(text, fieldnames=columns or list(rows[0]), restval="")
        writer.writeheader()
        writer.writerows(rows)
        atomic_write_text(text.getvalue(), self.path)  # a full disk keeps the earlier rows

    def write(self, row: dict) -> None:
        """Append ``row``; a row with new columns (the first tested epoch under ``log.eval_every > 1``)
        rewrites the file with the union of columns, earlier rows left empty there — no value is dropped."""
        new = not self.path.exists()
        if self.columns is None:
            self.columns = list(row)
        added = [k for k in row if k not in self.columns]
        if added and not new:
            with self.path.open(newline="") as f:
                rows = list(csv.DictReader(f))
            self.columns += added
            self._rewrite(rows, self.columns)
            new = not self.path.exists()
        elif added:
            self.columns += added
        with self.path.open("a", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=self.columns, restval="")
            if new:
                writer.writeheader()
            writer.writerow({k: _fmt(v) for k, v in row.items()})
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
