import subprocess
import sys

import pytest

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


def _room(tmp_path, monkeypatch, name: str, source: str):
    """A subcommand room ``spikedistill.<name>`` with ``source``, importable for this test only."""
    import spikedistill

    (tmp_path / f"{name}.py").write_text(source)
    monkeypatch.setattr(spikedistill, "__path__", [*spikedistill.__path__, str(tmp_path)])
    monkeypatch.delitem(sys.modules, f"spikedistill.{name}", raising=False)


def test_a_room_not_in_this_version_is_one_line(tmp_path, monkeypatch):
    from spikedistill.cli import _dispatch
    from spikedistill.errors import SpikeDistillError

    with pytest.raises(SpikeDistillError, match="'later' is not available in this version yet"):
        _dispatch("later", "no_such_room_here", "run_later")(None)
    _room(tmp_path, monkeypatch, "room_without_entry", "VALUE = 1\n")
    with pytest.raises(SpikeDistillError, match="'later' is not available in this version yet"):
        _dispatch("later", "room_without_entry", "run_later")(None)


def test_a_real_import_error_inside_a_room_is_not_called_a_missing_feature(tmp_path, monkeypatch):
    """A package the room needs names that package; a broken import inside it keeps its own error and
    traceback, never "not available in this version"."""
    from spikedistill.cli import _dispatch
    from spikedistill.errors import SpikeDistillError

    _room(tmp_path, monkeypatch, "room_needing_a_package", "import package_not_installed_xyz.sub\n")
    with pytest.raises(SpikeDistillError) as err:
        _dispatch("needy", "room_needing_a_package", "run")(None)
    assert "'package_not_installed_xyz'" in str(err.value) and "not available" not in str(err.value)

    _room(tmp_path, monkeypatch, "room_with_a_bug", "from spikedistill.errors import no_such_name\n")
    with pytest.raises(ImportError, match="no_such_name") as err:
        _dispatch("buggy", "room_with_a_bug", "run")(None)
    assert not isinstance(err.value, SpikeDistillError)

    _room(tmp_path, monkeypatch, "room_with_a_missing_part", "import spikedistill.no_such_part\n")
    with pytest.raises(ModuleNotFoundError, match="spikedistill.no_such_part"):
        _dispatch("partial", "room_with_a_missing_part", "run")(None)


def test_each_command_words_the_data_advice_in_its_own_options(tmp_path, capsys):
    """The data room says what is missing; train names data.root= and data.download=, eval --data-root."""
    from spikedistill.data import load_dataset
    from spikedistill.errors import DataNotFoundError

    with pytest.raises(DataNotFoundError) as err:
        load_dataset("cifar10", tmp_path / "none")
    missing = err.value
    assert missing.path == tmp_path / "none" / "cifar-10-batches-py" and missing.downloadable
    assert "download=True" in str(missing) and "root=DIR" in str(missing)
    assert missing.message("set data.root={place}{holds}", "set data.download=true") == (
        f"CIFAR folder not found at {tmp_path / 'none' / 'cifar-10-batches-py'}; set data.download=true, or set "
        "data.root=DIR (the folder that holds cifar-10-batches-py)")
    assert missing.message("pass --data-root {place}{holds}", None).endswith(
        "; pass --data-root DIR (the folder that holds cifar-10-batches-py)")

    recipe = tmp_path / "recipe.yaml"
    recipe.write_text("model: {name: small_cnn, spiking: true}\nloss: {name: ce}\ndata: {name: npz}\n"
                      "optim: {name: sgd, lr: 0.05, epochs: 1, batch_size: 8}\ntimesteps: 2\ndevice: cpu\n")
    assert main(["train", "--config", str(recipe), "--out", str(tmp_path / "run")]) == 2
    err_line = capsys.readouterr().err.strip()
    assert err_line == "error: dataset 'npz' needs a file; set data.root=FILE.npz"
