import subprocess
import sys

from spikedistill.cli import main


def test_help_lists_every_command():
    out = subprocess.run([sys.executable, "-m", "spikedistill", "--help"], capture_output=True, text=True, check=True)
    for command in ("demo", "train", "eval", "export", "bench"):
        assert command in out.stdout


def test_user_errors_exit_nonzero_with_one_line(capsys, tmp_path):
    code = main(["eval", str(tmp_path / "missing.pt")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code != 0
    assert len(err) == 1 and err[0].startswith("error: ")
