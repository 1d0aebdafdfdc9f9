"""spikedistill.checks: each rule written once, worded by the caller."""

import dataclasses
import typing

import pytest

from spikedistill.checks import check_bool, check_choice, check_int, check_number, check_positive_int
from spikedistill.errors import SpikeDistillError
from spikedistill.train.config import NON_NEGATIVE, POSITIVE, Config, OptimConfig, config_from_dict


@pytest.mark.parametrize("call, message", [
    (lambda: check_number("lr", -1, 0, inclusive=False), "lr must be a number > 0 (got -1)"),
    (lambda: check_number("lam", 1.5, 0.0, 1.0), "lam must be a number >= 0.0 and <= 1.0 (got 1.5)"),
    (lambda: check_number("tau", float("nan"), 0), "tau must be a number >= 0 (got nan)"),
    (lambda: check_number("tau", True, 0), "tau must be a number >= 0 (got True)"),
    (lambda: check_int("warmup", 2.5, 0), "warmup must be an integer >= 0 (got 2.5)"),
    (lambda: check_positive_int("batch", True), "batch must be a positive integer (got True)"),
    (lambda: check_choice("mode", "x", ("a", None)), "mode must be one of a (got 'x')"),
    (lambda: check_choice("mode", "x", ("a", "b"), quote=True), "mode must be one of 'a', 'b' (got 'x')"),
    (lambda: check_bool("flag", "false"), "flag must be true or false (got 'false')"),
])
def test_each_check_names_the_value_the_rule_and_what_came(call, message):
    with pytest.raises(SpikeDistillError) as err:
        call()
    assert str(err.value) == message


def test_a_caller_words_the_message_and_good_values_pass():
    with pytest.raises(SpikeDistillError, match=r"^option tau=0 is invalid; use a number > 0$"):
        check_number("tau", 0, 0, inclusive=False, say=lambda name, value,
                     rule: f"option {name}={value!r} is invalid; use {rule}")
    assert check_number("tau", 2, 0, inclusive=False) == 2.0 and isinstance(check_number("tau", 2, 0), float)
    assert (check_positive_int("n", 3) == 3 and check_choice("m", None, ("a", None)) is None
            and check_bool("f", False) is False)


def test_config_fields_declare_their_allowed_values():
    fields = {f.name: f for f in dataclasses.fields(OptimConfig)}
    assert fields["epochs"].metadata == POSITIVE and fields["weight_decay"].metadata == NON_NEGATIVE
    assert typing.get_args(typing.get_type_hints(OptimConfig)["name"]) == ("sgd", "adamw")
    assert typing.get_args(typing.get_type_hints(Config)["precision"]) == ("bf16", "fp32")
    with pytest.raises(SpikeDistillError, match=r"^config key 'optim.weight_decay' must be >= 0 \(got -1.0\)$"):
        config_from_dict({"optim": {"weight_decay": -1}})
    with pytest.raises(SpikeDistillError,
                       match=r"^config key 'distributed.backend' must be one of nccl, gloo \(got 'mpi'\)$"):
        config_from_dict({"distributed": {"backend": "mpi"}})
    with pytest.raises(SpikeDistillError,
                       match=r"^config key 'seed' must be an integer in 0..2\*\*63-1 \(got -1\); e.g. seed=60$"):
        config_from_dict({"seed": -1})
    assert config_from_dict({"distributed": {"backend": None}}).distributed.backend is None
