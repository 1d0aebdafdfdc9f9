import subprocess
import sys

from spikedistill.cli import main


def test_help_lists_every_command():
    out = subprocess.run([sys.executable, "-m", "spikedistill", "--help"], capture_output=True, text=True, check=True)
    # The listing's rows: "    train     train a teacher ..."; a command named only in prose does not count.
    listed = [line.split()[0] for line in out.stdout.splitlines() if line.startswith("    ") and line.strip()]
    assert listed[:5] == ["demo", "train", "eval", "export", "bench"]


def test_user_errors_exit_nonzero_with_one_line(capsys, tmp_path):
    code = main(["eval", str(tmp_path / "missing.pt")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code != 0
    assert len(err) == 1 and err[0].startswith("error: ")
