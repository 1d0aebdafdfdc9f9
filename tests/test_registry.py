"""Registry.build: the one option check models, losses and datasets are built through."""

from __future__ import annotations

import pytest

import spikedistill as sd
from spikedistill.data import load_dataset
from spikedistill.errors import SpikeDistillError, UnknownNameError
from spikedistill.registry import Registry


def _registry() -> Registry:
    widgets = Registry("widget", given=("size",), recipe_key="widget.options")

    @widgets.register("box")
    def box(size, colour="red", sides=4):
        return {"size": size, "colour": colour, "sides": list(range(sides))}

    @widgets.register("bag")
    def bag(size, **anything):
        return {"size": size, **anything}

    return widgets


def test_build_calls_the_constructor_with_the_given_arguments_and_the_options():
    assert _registry().build("box", given={"size": 2}, colour="blue", sides=3) == {"size": 2, "colour": "blue",
                                                                                 "sides": [0, 1, 2]}


def test_options_are_the_signature_without_the_given_arguments():
    widgets = _registry()
    assert widgets.options("box") == ["colour", "sides"]
    assert widgets.options("bag") == []
    assert widgets.takes("box", "colour") and not widgets.takes("box", "weight") and widgets.takes("bag", "weight")


def test_an_unknown_name_suggests_the_nearest_and_lists_all():
    with pytest.raises(UnknownNameError, match=r"^unknown widget 'bx'; did you mean 'box'\? known: box, bag$"):
        _registry().build("bx", given={"size": 1})


def test_an_unknown_option_suggests_the_nearest_and_lists_the_valid_ones():
    with pytest.raises(SpikeDistillError, match=r"^unknown option 'colour_' for widget 'box'; did you mean 'colour'\? "
                                                r"valid: colour, sides$"):
        _registry().build("box", given={"size": 1}, colour_="blue")
    with pytest.raises(SpikeDistillError, match=r"unknown option 'size' for widget 'box'"):  # given, not an option
        _registry().build("box", given={"size": 1}, size=3)


def test_kwargs_take_any_option():
    assert _registry().build("bag", given={"size": 1}, weight=3) == {"size": 1, "weight": 3}


def test_an_option_of_the_wrong_type_is_one_line_naming_it_and_the_options():
    with pytest.raises(SpikeDistillError) as err:
        _registry().build("box", given={"size": 1}, sides="four")
    message = str(err.value)
    assert message.startswith("widget 'box' cannot be built with sides='four' (TypeError: ")
    assert message.endswith("check widget.options against its options: colour, sides")
    assert "\n" not in message


def test_models_losses_and_datasets_build_through_their_registry():
    """The three public builders word their option mistakes alike: the registry's one check."""
    for call, words in [(lambda: sd.create_model("small_cnn", widht=3),
                         ("for model 'small_cnn'", "did you mean 'widths'")),
                        (lambda: sd.create_loss("twkd", tua=2), ("for loss 'twkd'", "did you mean 'tau'")),
                        (lambda: load_dataset("digits", test_fractoin=0.5), ("for dataset 'digits'",
                                                                           "did you mean 'test_fraction'"))]:
        with pytest.raises(SpikeDistillError) as err:
            call()
        assert str(err.value).startswith("unknown option ")
        for word in words:
            assert word in str(err.value)
