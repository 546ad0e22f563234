"""Families and links carry their own rules: declarations read by the registry, the data checks and model files."""

from __future__ import annotations

import numpy as np
import pytest

import neuralglm as ng
from neuralglm.errors import SpecificationError
from neuralglm.family import Binomial, Family, NegativeBinomial, Poisson, Tweedie
from neuralglm.family.link import Power
from neuralglm.family.registry import get_family, get_link, valid_families

FAMILIES = [cls for cls in Family.__subclasses__()]


def test_registry_lists_every_declared_family_with_its_parameter():
    names = {cls.name if cls.parameter_name is None else f"{cls.name}({cls.parameter_name})" for cls in FAMILIES}
    assert set(valid_families()) == names
    assert "tweedie(power)" in names and "negative_binomial(alpha)" in names


@pytest.mark.parametrize("cls", FAMILIES, ids=lambda cls: cls.name)
def test_every_family_declares_its_rules(cls):
    # A family whose parameter has no default (Tweedie's power) is built with one: named bare, it is an error.
    family = cls(1.5) if cls.parameter_name is not None and cls.parameter_default is None else cls()
    assert family.default_link in family.allowed_links
    for link in family.allowed_links:
        resolved = get_link("power(0.5)" if link == "power(p)" else link, family)
        assert resolved is not None
    assert get_family(family.registry_name) == family
    if cls.parameter_name is not None:
        assert hasattr(family, cls.parameter_name)


def test_links_outside_the_declared_ones_are_refused_with_the_list():
    with pytest.raises(SpecificationError, match="available links: logit, probit, cloglog, log"):
        get_link("inverse", Binomial())
    assert type(get_link(Power(2.0), Binomial())) is Power  # a Link object is taken as given, as in R


def test_only_binomial_declares_trials_and_separation():
    trials = {cls.name for cls in FAMILIES if cls.weights_are_trials}
    separation = {cls.name for cls in FAMILIES if cls.separation_possible}
    assert trials == separation == {"binomial", "quasibinomial"}


@pytest.mark.parametrize(
    ("make", "parameter"),
    [
        (lambda: Tweedie(power="x"), "power"),  # type: ignore[arg-type]
        (lambda: Tweedie(power=0.5), "power"),
        (lambda: Tweedie(power=float("nan")), "power"),
        (lambda: NegativeBinomial(alpha="x"), "alpha"),  # type: ignore[arg-type]
        (lambda: NegativeBinomial(alpha=0.0), "alpha"),
        (lambda: NegativeBinomial(alpha=True), "alpha"),
        (lambda: Power(power="x"), "power"),  # type: ignore[arg-type]
        (lambda: Power(power=None), "power"),  # type: ignore[arg-type]
    ],
)
def test_parameterized_constructors_raise_the_librarys_error(make, parameter):
    with pytest.raises(SpecificationError, match=f"'{parameter}'"):
        make()


def test_family_without_parameter_refuses_one():
    with pytest.raises(SpecificationError, match="takes no parameter"):
        get_family("poisson(2)")


def test_a_binomial_two_level_factor_response_follows_the_declaration():
    df = ng.datasets.load_insurance()
    data = df.assign(big=np.where(df["claims"] > df["claims"].median(), "yes", "no"))
    fit = ng.glm("big ~ age", data, family="binomial")
    assert fit.info.converged
    with pytest.raises(ng.errors.DataError, match="not numeric"):
        ng.glm("big ~ age", data, family=Poisson())


@pytest.mark.parametrize(
    "make, attribute",
    [
        (lambda v: Tweedie(power=v), "power"),
        (lambda v: NegativeBinomial(alpha=v), "alpha"),
        (lambda v: Power(v), "power"),
    ],
)
def test_numpy_scalar_parameters_become_python_floats(make, attribute):
    for value in (np.float32(1.5), np.float64(1.5), 1.5):
        made = make(value)
        assert type(getattr(made, attribute)) is float and getattr(made, attribute) == 1.5
        assert made == make(1.5) and hash(made) == hash(make(1.5))
    assert Tweedie(np.float64(1.5)) == Tweedie(1.5) and hash(Tweedie(np.float64(1.5))) == hash(Tweedie(1.5))


def test_a_glm_with_numpy_scalar_family_and_link_parameters_saves_and_loads(tmp_path):
    import io

    import pandas as pd

    rng = np.random.default_rng(3)
    frame = pd.DataFrame({"x": rng.uniform(0.5, 2.0, size=80)})
    frame["y"] = rng.gamma(2.0, np.exp(0.3 + 0.2 * frame["x"]) / 2.0)
    model = ng.glm("y ~ x", frame, family=Tweedie(power=np.float32(1.5)), link=Power(np.float64(0.5)))
    buffer = io.BytesIO()
    model.save(buffer)
    loaded = ng.load(io.BytesIO(buffer.getvalue()))
    assert loaded.family == Tweedie(1.5) and loaded.link == Power(0.5)
    np.testing.assert_array_equal(loaded.predict(frame), model.predict(frame))
