"""One parameter table: ng.fit, ng.glm, the scikit-learn estimators and the command line agree with it.

The references are the signatures themselves (``inspect.signature(ng.fit)``), scikit-learn's
own ``get_params``/``clone``, argparse's parsed defaults, and for the seed limit JAX's key
derivation. Bad values must be refused before any work: ``make_design`` (the first step that
reads the data) is replaced by a function that fails the test if it is reached.
"""

from __future__ import annotations

import argparse
import inspect
import math

import jax
import numpy as np
import pandas as pd
import pytest

import neuralglm as ng
import neuralglm.api
import neuralglm.network
from neuralglm.cli import _parser
from neuralglm.errors import SpecificationError
from neuralglm.options import MARKER, MAX_SEED, PARAMETERS, validate

sklearn = pytest.importorskip("sklearn", reason="scikit-learn is an optional dependency (extra 'sklearn')")
from sklearn.base import clone  # noqa: E402

DATA_ARGUMENTS = {"formula", "data", "offset", "exposure", "weights", "freq_weights", "missing"}
FIT_PARAMETERS = [name for name in inspect.signature(ng.fit).parameters if name not in DATA_ARGUMENTS]


@pytest.fixture
def df():
    rng = np.random.default_rng(0)
    x = rng.normal(size=40)
    return pd.DataFrame({"y": rng.poisson(np.exp(0.2 + 0.3 * x)).astype(float), "x": x})


@pytest.fixture
def no_work(monkeypatch):
    """Fail the test if the data are read: a bad value must be refused before that."""

    def refuse(*args, **kwargs):
        raise AssertionError("make_design was called: the bad value was not refused up front")

    monkeypatch.setattr(neuralglm.network, "make_design", refuse)
    monkeypatch.setattr(neuralglm.api, "make_design", refuse)
    monkeypatch.setattr(neuralglm.api, "design_from_arrays", refuse)


def _subcommand(name: str) -> argparse.ArgumentParser:
    parser = _parser()
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return action.choices[name]


# ---- every parameter, everywhere, with the same default --------------------------------------------
def test_the_table_is_the_hyper_parameters_of_fit_in_order():
    assert list(PARAMETERS) == FIT_PARAMETERS
    signature = inspect.signature(ng.fit).parameters
    for name in FIT_PARAMETERS:
        assert signature[name].default == PARAMETERS[name].default, name


def test_the_estimators_expose_every_parameter_with_its_default():
    regressor, classifier = ng.NeuralGLMRegressor().get_params(), ng.NeuralGLMClassifier().get_params()
    assert sorted(regressor) == sorted(FIT_PARAMETERS)
    assert sorted(classifier) == sorted(set(FIT_PARAMETERS) - {"family"})  # the classifier is binomial
    for name, value in regressor.items():
        # One documented difference: no progress bars inside cross-validation.
        expected = False if name == "verbose" else PARAMETERS[name].default
        assert value == expected, name
        if name != "family":
            assert classifier[name] == expected, name


@pytest.mark.parametrize("command", ["fit", "compare"])
def test_the_command_line_has_a_flag_for_every_parameter_with_its_default(command):
    subparser = _subcommand(command)
    flags = {option for action in subparser._actions for option in action.option_strings}
    for name in FIT_PARAMETERS:
        assert "--" + name.replace("_", "-") in flags, name
    args = subparser.parse_args(["data.csv", "--formula", "y ~ x"] + (["--out", "m.npz"] if command == "fit" else []))
    for name in FIT_PARAMETERS:
        assert getattr(args, name) == PARAMETERS[name].default, name


def test_glm_and_glm_fit_share_the_defaults_of_the_table():
    for function in (ng.glm, ng.glm_fit):
        signature = inspect.signature(function).parameters
        for name in ("dispersion", "cov_type", "max_iter", "epsilon"):
            assert signature[name].default == PARAMETERS[name].default, (function.__name__, name)
        assert signature["progress"].default == PARAMETERS["verbose"].default


def test_docstrings_list_every_parameter_from_the_table():
    for obj, names in ((ng.fit, FIT_PARAMETERS), (ng.NeuralGLMRegressor, FIT_PARAMETERS), (ng.NeuralGLMClassifier, FIT_PARAMETERS[1:])):
        doc = obj.__doc__ or ""
        assert MARKER not in doc
        for name in names:
            assert f"\n    {name} : " in doc, (obj, name)
    assert "Examples" in (ng.fit.__doc__ or "") and ">>> net = ng.fit(" in (ng.fit.__doc__ or "")
    assert "progress : bool or None, default=None" in (ng.glm.__doc__ or "")


# ---- bad values: refused up front, in one sentence ----------------------------------------------------
BAD = [
    # wrong type
    ("l2", "0.1"),
    ("epochs", [10]),
    ("learning_rate", "fast"),
    ("hidden", "4"),
    ("hidden", (2.5,)),
    ("activation", 3),
    ("family", 3),
    ("link", 2.0),
    ("verbose", "yes"),
    ("early_stopping", "yes"),
    # out of range, non-finite
    ("l2", -1),
    ("l2", math.nan),
    ("tol", math.inf),
    ("momentum", 1.0),
    ("validation_fraction", 0.0),
    ("batch_size", 0),
    ("patience", 0),
    ("max_iter", 0),
    ("epsilon", 0.0),
    ("hidden", (4, 0)),
    ("seed", -1),
    # None where it is not allowed
    ("epsilon", None),
    ("hidden", None),
    ("l2", None),
    ("seed", None),
    ("solver", None),
    ("cov_type", None),
    ("dtype", None),
    ("penalize_output", None),
    # a bool where an int is needed
    ("batch_size", True),
    ("epochs", False),
    ("seed", True),
    ("hidden", (True,)),
    ("max_iter", np.bool_(True)),
    # too large a seed (JAX would cut it to 32 bits, or overflow)
    ("seed", MAX_SEED + 1),
    ("seed", 2**64),
    # ints beyond float's range (float() overflows): refused, not a raw OverflowError
    ("seed", 2**1100),
    ("l2", 10**400),
    ("epsilon", 10**400),
    # choices
    ("solver", "newton"),
    ("cov_type", "hc3"),
    ("dtype", "float16"),
    ("dispersion", "mle"),
    ("dispersion", -1.0),
    ("dispersion", True),
    ("activation", "swish"),
]


@pytest.mark.parametrize(("name", "value"), BAD, ids=[f"{name}={value!r}" for name, value in BAD])
def test_ng_fit_refuses_a_bad_value_before_any_work(df, no_work, name, value):
    with pytest.raises(SpecificationError, match=rf"^The '{name}' parameter of fit must be .* Got .* instead\.$") as caught:
        ng.fit("y ~ x", df, **({"family": "poisson"} | {name: value}))
    assert isinstance(caught.value, ValueError)


GLM_BAD = [(name, value) for name, value in BAD if name in ("dispersion", "cov_type", "max_iter", "epsilon", "verbose")]


@pytest.mark.parametrize(("name", "value"), GLM_BAD)
def test_glm_and_glm_fit_refuse_a_bad_value_before_any_work(df, no_work, name, value):
    argument = "progress" if name == "verbose" else name
    with pytest.raises(SpecificationError, match=rf"^The '{argument}' parameter of glm must be"):
        ng.glm("y ~ x", df, family="poisson", **{argument: value})
    with pytest.raises(SpecificationError, match=rf"^The '{argument}' parameter of glm_fit must be"):
        ng.glm_fit(np.ones((3, 1)), np.ones(3), **{argument: value})


@pytest.mark.parametrize(("name", "value"), [b for b in BAD if b[0] != "family"][::3])
def test_estimators_refuse_a_bad_value_in_fit_before_any_work(no_work, name, value):
    X, y = np.random.default_rng(0).normal(size=(20, 2)), np.arange(20.0) % 3
    estimator = ng.NeuralGLMRegressor(**{name: value})  # scikit-learn: __init__ stores, fit validates
    assert estimator.get_params()[name] is value
    with pytest.raises(SpecificationError, match=rf"The '{name}' parameter of fit must be"):
        estimator.fit(X, y)


def test_a_number_out_of_range_is_told_its_range_and_a_wrong_type_every_option():
    with pytest.raises(
        SpecificationError, match=r"^The 'l2' parameter of fit must be a float in the range \[0\.0, inf\)\. Got -1 instead\.$"
    ):
        validate("fit", {"l2": -1})
    with pytest.raises(SpecificationError, match=r"must be an int in the range \[1, inf\) or None\. Got 'ten' instead\.$"):
        validate("fit", {"epochs": "ten"})
    with pytest.raises(SpecificationError, match=r"must be an int in the range \[0, 4294967295\]\. Got 4294967296 instead\.$"):
        validate("fit", {"seed": 2**32})


def test_numpy_integers_and_an_int_for_hidden_are_accepted():
    settings = validate(
        "fit",
        {
            "hidden": (np.int64(4), np.int32(2)),
            "epochs": np.int64(5),
            "seed": np.uint32(MAX_SEED),
            "batch_size": np.int16(8),
            "l2": np.float32(0.5),
        },
    )
    assert settings == {"hidden": (4, 2), "epochs": 5, "seed": MAX_SEED, "batch_size": 8, "l2": 0.5}
    assert all(type(value) in (int, float) for value in [*settings["hidden"], settings["epochs"], settings["seed"], settings["l2"]])
    assert validate("fit", {"hidden": 5, "dtype": np.float64, "verbose": np.bool_(False)}) == {
        "hidden": (5,),
        "dtype": "float64",
        "verbose": False,
    }


def test_a_network_fits_with_numpy_integer_settings(df):
    with pytest.warns(ng.errors.ConvergenceWarning):  # three epochs: stopped on purpose
        net = ng.fit("y ~ x", df, family="poisson", hidden=np.int64(2), epochs=np.int64(3), seed=np.int64(7), solver="adam")
    assert net.architecture.hidden == (2,) and net.seed == 7 and type(net.seed) is int


def test_the_seed_limit_is_where_jax_starts_to_wrap():
    """The reason for MAX_SEED: beyond 2**32 - 1 (without x64), JAX's key repeats the key of a smaller seed."""
    with jax.enable_x64(False):
        data = [np.asarray(jax.random.key_data(jax.random.key(seed))) for seed in (0, MAX_SEED, MAX_SEED + 1)]
    assert not np.array_equal(data[0], data[1])
    np.testing.assert_array_equal(data[2], data[0])


def test_the_caller_is_not_mutated_and_values_reach_the_fit_unchanged(df):
    hidden = [np.int64(2)]
    with pytest.warns(ng.errors.ConvergenceWarning):
        net = ng.fit("y ~ x", df, family="poisson", hidden=hidden, epochs=2, solver="sgd", momentum=0.5, patience=3, penalize_output=False)
    assert hidden == [np.int64(2)] and type(hidden[0]) is np.int64
    assert (net.control.momentum, net.control.patience, net.control.penalize_output) == (0.5, 3, False)


# ---- scikit-learn: get_params, set_params and clone round trip ---------------------------------------
NON_DEFAULT = dict(
    family="gamma",
    link="log",
    hidden=(3, 2),
    activation=("tanh", "relu"),
    solver="adam",
    learning_rate=0.01,
    epochs=7,
    batch_size=16,
    l2=0.1,
    penalize_output=False,
    momentum=0.5,
    early_stopping=True,
    validation_fraction=0.2,
    patience=3,
    tol=1e-3,
    seed=11,
    dtype="float64",
    verbose=None,
    dispersion="pearson",
    cov_type="sandwich",
    max_iter=50,
    epsilon=1e-10,
    architecture="cann",
    cann_fixed=True,
    embed={"region": 2},
)


def test_clone_and_set_params_round_trip_every_parameter():
    assert set(NON_DEFAULT) == set(FIT_PARAMETERS)
    estimator = ng.NeuralGLMRegressor(**NON_DEFAULT)
    assert estimator.get_params() == NON_DEFAULT
    assert clone(estimator).get_params() == NON_DEFAULT
    fresh = ng.NeuralGLMRegressor().set_params(**NON_DEFAULT)
    assert fresh.get_params() == NON_DEFAULT
    classifier = ng.NeuralGLMClassifier(**{k: v for k, v in NON_DEFAULT.items() if k != "family"})
    assert clone(classifier).get_params() == {k: v for k, v in NON_DEFAULT.items() if k != "family"}
    assert "patience=3" in repr(estimator)


def test_estimator_init_refuses_unknown_or_positional_arguments():
    with pytest.raises(TypeError, match=r"NeuralGLMRegressor\(\): got an unexpected keyword argument 'alpha'"):
        ng.NeuralGLMRegressor(alpha=1.0)
    with pytest.raises(TypeError):
        ng.NeuralGLMRegressor("poisson")  # type: ignore[misc]
    with pytest.raises(TypeError, match="family"):
        ng.NeuralGLMClassifier(family="poisson")


def test_a_long_value_passed_by_mistake_is_named_not_printed():
    with pytest.raises(SpecificationError, match=r"^The 'l2' parameter of fit must be .* Got \[0, 1, 2, .*… \(list\) instead\.$") as caught:
        validate("fit", {"l2": list(range(10_000))})
    assert len(str(caught.value)) < 200
