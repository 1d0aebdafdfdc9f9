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


def test_bench_outside_a_source_checkout_says_where_to_run_it(capsys, tmp_path, monkeypatch):
    """The benchmark is a script of the repository, not of the installed package."""
    from spikedistill import cli

    monkeypatch.setattr(cli, "__file__", str(tmp_path / "site-packages" / "spikedistill" / "cli.py"))
    monkeypatch.chdir(tmp_path)
    assert main(["bench", "--device", "cpu"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and "benchmarks/bench_step.py" in err[0]
    assert "source folder" in err[0]
