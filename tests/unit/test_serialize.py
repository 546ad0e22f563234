"""Model files: fit.save(path) / ng.load(path) round trips, and every way a file can be refused.

Round trips compare with the original model itself (the reference): predictions must be
identical bit for bit (``np.array_equal``), since the same arrays go through the same code.
"""

from __future__ import annotations

import ast
import builtins
import dataclasses
import io
import json
import pathlib
import pickle
import warnings
import zipfile
from unittest import mock

import numpy as np
import pandas as pd
import pytest

import neuralglm as ng
from helpers import model_file_entries, resealed_model_file
from neuralglm.errors import ConvergenceWarning, DataError, ModelFileError, SpecificationError
from neuralglm.fit.info import HISTORY_COLUMNS
from neuralglm.model.architecture import Architecture
from neuralglm.results import model_file, parts, serialize

FAMILIES = [
    "gaussian",
    "binomial",
    "poisson",
    "gamma",
    "inverse_gaussian",
    "tweedie(1.5)",
    "tweedie(1.2345678901234)",
    "negative_binomial(0.5)",
]
LINKS = ["identity", "log", "logit", "probit", "cloglog", "inverse", "inverse_squared", "sqrt", "power(0.5)", "power(-0.3333333333333)"]


def _frame(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "x": rng.normal(size=n),
            "g": rng.choice(["a", "b", "c"], size=n),
            "k": rng.choice([1, 2, 3], size=n),
            "flag": rng.choice([False, True], size=n),
            "exposure": rng.uniform(0.5, 2.0, size=n),
        },
        index=[f"r{i}" for i in range(n)],
    )
    eta = -0.5 + 0.3 * frame["x"] + 0.4 * (frame["g"] == "b") - 0.2 * (frame["k"] == 3) + np.log(frame["exposure"])
    frame["y"] = rng.poisson(np.exp(eta))
    return frame


@pytest.fixture(scope="module")
def data() -> pd.DataFrame:
    return _frame(120, seed=0)


@pytest.fixture(scope="module")
def new_data() -> pd.DataFrame:
    return _frame(25, seed=1)


@pytest.fixture(scope="module")
def glm(data):
    return ng.glm("y ~ x + C(g) + C(k) + C(flag)", data, family="poisson", exposure="exposure")


@pytest.fixture(scope="module")
def network(data):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # three epochs: not converged on purpose
        return ng.fit(
            "y ~ x + C(g) + C(k)",
            data,
            family="poisson",
            exposure="exposure",
            hidden=(4, 3),
            activation=("tanh", "relu"),
            solver="adam",
            epochs=3,
            batch_size=32,
            early_stopping=True,
            validation_fraction=0.2,
            seed=0,
        )


def _saved(result, include_data: bool = True) -> bytes:
    """The bytes of a saved model (with its training data unless asked otherwise: most tests check their round trip)."""
    buffer = io.BytesIO()
    result.save(buffer, include_data=include_data)
    return buffer.getvalue()


def _archive(spec: dict, arrays: dict[str, np.ndarray]) -> io.BytesIO:
    """Write entries as they are, checksums untouched (a hand-edited file)."""
    buffer = io.BytesIO()
    text = json.dumps(spec).encode()
    np.savez(buffer, **{serialize.SPEC_ENTRY: np.frombuffer(text, dtype=np.uint8), **arrays})
    buffer.seek(0)
    return buffer


# ---- round trips -------------------------------------------------------------------------------
def test_glm_round_trip_predicts_and_reports_identically(glm, data, new_data, tmp_path):
    path = tmp_path / "glm.npz"
    glm.save(path, include_data=True)
    loaded = ng.load(path)
    assert type(loaded) is ng.FitResult and loaded.kind == "glm"
    for kind in ("response", "link"):
        assert np.array_equal(loaded.predict(new_data, type=kind), glm.predict(new_data, type=kind))
        pd.testing.assert_series_equal(loaded.predict(new_data, type=kind), glm.predict(new_data, type=kind))
    pd.testing.assert_series_equal(loaded.coef, glm.coef)
    pd.testing.assert_series_equal(loaded.std_errors, glm.std_errors)
    pd.testing.assert_frame_equal(loaded.vcov, glm.vcov)
    for name in (
        "deviance",
        "null_deviance",
        "pearson_chi2",
        "loglik",
        "aic",
        "bic",
        "dispersion",
        "df_model",
        "df_resid",
        "n_obs",
        "rank",
    ):
        assert getattr(loaded, name) == getattr(glm, name), name
        assert type(getattr(loaded, name)) is type(getattr(glm, name)), name
    assert (loaded.family, loaded.link, loaded.formula, loaded.cov_type) == (glm.family, glm.link, glm.formula, glm.cov_type)
    assert str(loaded.summary()) == str(glm.summary()).replace("\n\n", f"\nModel file: saved with training data ({len(data)} rows)\n\n", 1)
    assert loaded.summary().coefficients.equals(glm.summary().coefficients)
    info, original = loaded.info, glm.info
    assert (info.converged, info.n_iter, info.status, info.solver, info.message, info.seconds) == (
        original.converged,
        original.n_iter,
        original.status,
        original.solver,
        original.message,
        original.seconds,
    )
    pd.testing.assert_frame_equal(info.history, original.history)
    # Training data came along: fitted values, residuals, labels.
    pd.testing.assert_series_equal(loaded.predict(), glm.predict())
    pd.testing.assert_series_equal(loaded.residuals("pearson"), glm.residuals("pearson"))
    assert list(loaded.design.row_labels) == list(data.index)
    assert np.array_equal(loaded.design.X, glm.design.X)
    assert loaded.design.offset_source == glm.design.offset_source


def test_network_round_trip_predicts_bit_for_bit(network, new_data, tmp_path):
    path = tmp_path / "net.npz"
    network.save(path, include_data=True)
    loaded = ng.load(path)
    assert type(loaded) is ng.NetworkResult and loaded.kind == "network"
    for kind in ("response", "link"):
        assert np.array_equal(loaded.predict(new_data, type=kind).to_numpy(), network.predict(new_data, type=kind).to_numpy())
    for ours, theirs in zip(loaded.params, network.params, strict=True):
        assert np.array_equal(ours.weight, theirs.weight) and np.array_equal(ours.bias, theirs.bias)
    assert loaded.architecture == network.architecture
    assert np.array_equal(loaded.scaling.mean, network.scaling.mean) and np.array_equal(loaded.scaling.scale, network.scaling.scale)
    assert loaded.control == network.control
    assert np.array_equal(loaded.validation_rows, network.validation_rows)
    assert loaded.validation_rows.dtype == network.validation_rows.dtype
    assert str(loaded.summary()).replace("Model file: saved with training data (120 rows)\n", "") == str(network.summary())
    pd.testing.assert_frame_equal(loaded.features(new_data), network.features(new_data))
    pd.testing.assert_series_equal(loaded.predict(), network.predict())
    pd.testing.assert_series_equal(loaded.output_glm().coef, network.output_glm().coef)


@pytest.mark.parametrize("name", FAMILIES)
def test_every_family_string_round_trips(name):
    family = ng.get_family(name)
    rebuilt = parts.family_from(json.loads(json.dumps(parts.family_string(family))))
    assert type(rebuilt) is type(family) and rebuilt == family


@pytest.mark.parametrize("name", LINKS)
def test_every_link_string_round_trips(name):
    link = ng.get_link(name)
    rebuilt = parts.link_from(json.loads(json.dumps(parts.link_string(link))))
    assert type(rebuilt) is type(link) and rebuilt == link


def test_family_and_link_are_stored_as_registry_strings(data):
    fit = ng.glm("exposure ~ x", data, family="tweedie(1.5)", link="power(0.5)")
    spec, _ = model_file_entries(_saved(fit))
    assert spec["result"]["family"] == "tweedie(1.5)" and spec["result"]["link"] == "power(0.5)"
    assert np.array_equal(ng.load(io.BytesIO(_saved(fit))).predict(data), fit.predict(data))


def test_factor_levels_keep_their_types(glm):
    loaded = ng.load(io.BytesIO(_saved(glm)))
    state = loaded.design.spec.encoder_state
    assert [type(v) for v in state["C(g)"][1]["categories"]] == [str] * 3
    assert [type(v) for v in state["C(k)"][1]["categories"]] == [int] * 3
    assert [type(v) for v in state["C(flag)"][1]["categories"]] == [bool] * 2
    assert list(loaded.design.spec.column_names) == list(glm.design.column_names)


def test_stateful_transforms_and_treatment_base_round_trip(data, new_data):
    fit = ng.glm("y ~ center(x) + poly(k, 2) + C(g, contr.treatment(base='b'))", data, family="poisson", exposure="exposure")
    loaded = ng.load(io.BytesIO(_saved(fit)))
    assert np.array_equal(loaded.predict(new_data), fit.predict(new_data))


def test_unseen_levels_are_refused_after_loading(glm, new_data):
    loaded = ng.load(io.BytesIO(_saved(glm)))
    with pytest.raises(DataError, match="not seen when fitting"):
        loaded.predict(new_data.assign(g="z"))


# ---- include_data=False ------------------------------------------------------------------------
def test_without_data_predicts_new_data_and_refuses_the_rest(glm, network, new_data):
    for result in (glm, network):
        raw = _saved(result, include_data=False)
        assert len(raw) < len(_saved(result))
        loaded = ng.load(io.BytesIO(raw))
        assert isinstance(loaded, type(result))
        assert np.array_equal(loaded.predict(new_data), result.predict(new_data))
        assert "Model file: saved without training data" in str(loaded.summary())
        assert str(loaded.summary()).replace(loaded.source.describe() + "\n", "") == str(result.summary())
        assert loaded.design.n_obs == 0 and loaded.design.n_coef == result.design.n_coef
        with pytest.raises(ModelFileError, match="include_data=False"):
            loaded.predict()
        with pytest.raises(ModelFileError, match="include_data=False"):
            loaded.residuals()
    loaded = ng.load(io.BytesIO(_saved(network, include_data=False)))
    with pytest.raises(ModelFileError, match="include_data=False"):
        loaded.output_glm()
    with pytest.raises(ModelFileError, match="include_data=False"):
        loaded.features()
    # Saving it again keeps it marked as data-less.
    assert model_file_entries(_saved(loaded))[0]["include_data"] is False


# ---- refused files -----------------------------------------------------------------------------
def test_truncated_file_is_refused(glm):
    raw = _saved(glm)
    for size in (len(raw) // 2, len(raw) - 30, 10, 0):
        with pytest.raises(ModelFileError, match=r"truncated|corrupt|not a readable"):
            ng.load(io.BytesIO(raw[:size]))


def test_flipped_byte_in_an_array_is_refused(glm):
    raw = bytearray(_saved(glm))
    with zipfile.ZipFile(io.BytesIO(bytes(raw))) as archive:
        info = archive.getinfo("coef.npy")
    raw[info.header_offset + 30 + len(info.filename) + info.file_size - 3] ^= 0x01  # inside the coefficients' bytes
    with pytest.raises(ModelFileError, match="corrupt"):
        ng.load(io.BytesIO(bytes(raw)))


def test_changed_array_in_a_valid_archive_fails_its_checksum(glm):
    spec, arrays = model_file_entries(_saved(glm))
    arrays["coef"] = arrays["coef"] + 1e-12
    with pytest.raises(ModelFileError, match=r"checksum of array 'coef'"):
        ng.load(_archive(spec, arrays))


def test_edited_spec_is_refused(glm):
    spec, arrays = model_file_entries(_saved(glm))
    spec["result"]["statistics"]["deviance"] = 1.0
    with pytest.raises(ModelFileError, match=r"checksum of its 'spec\.json'"):
        ng.load(_archive(spec, arrays))


def test_missing_and_extra_entries_are_refused(glm):
    spec, arrays = model_file_entries(_saved(glm))
    with pytest.raises(ModelFileError, match=r"missing array entries \['vcov'\]"):
        ng.load(_archive(spec, {k: v for k, v in arrays.items() if k != "vcov"}))
    with pytest.raises(ModelFileError, match=r"unexpected entries \['extra'\]"):
        ng.load(_archive(spec, {**arrays, "extra": np.zeros(2)}))


def test_future_format_version_asks_to_upgrade(glm):
    spec, arrays = model_file_entries(_saved(glm))
    spec["format_version"] = serialize.FORMAT_VERSION + 1
    with pytest.raises(
        ModelFileError, match=f"format version {serialize.FORMAT_VERSION + 1}.*up to {serialize.FORMAT_VERSION}.*upgrade neuralglm"
    ):
        ng.load(resealed_model_file(spec, arrays))


def test_other_files_are_not_neuralglm_models(tmp_path):
    buffer = io.BytesIO()
    np.savez(buffer, a=np.arange(3))
    buffer.seek(0)
    with pytest.raises(ModelFileError, match="not a neuralglm model file"):
        ng.load(buffer)
    single = io.BytesIO()
    np.save(single, np.arange(3))
    single.seek(0)
    with pytest.raises(ModelFileError, match="single NumPy array"):
        ng.load(single)
    text = tmp_path / "notes.npz"
    text.write_text("hello")
    with pytest.raises(ModelFileError, match="not a readable"):
        ng.load(text)
    spec = {"format": "something-else", "format_version": 1}
    with pytest.raises(ModelFileError, match="not a neuralglm model file"):
        ng.load(_archive(spec, {}))


_UNPICKLED: list[str] = []


def _record(message: str) -> str:
    _UNPICKLED.append(message)
    return message


class _Payload:
    def __reduce__(self):
        return (_record, ("unpickled",))


def test_pickled_entries_are_never_unpickled(glm):
    spec, arrays = model_file_entries(_saved(glm))
    payload = np.array([_Payload()], dtype=object)
    buffer = io.BytesIO()
    spec = {k: v for k, v in spec.items() if k not in ("arrays", "spec_sha256")}
    spec["arrays"] = {**{k: model_file.array_digest(v) for k, v in arrays.items()}, "payload": "0" * 64}
    spec["spec_sha256"] = model_file.spec_digest(spec)
    np.savez(buffer, **{serialize.SPEC_ENTRY: np.frombuffer(json.dumps(spec).encode(), dtype=np.uint8), **arrays, "payload": payload})
    buffer.seek(0)
    with pytest.raises(ModelFileError, match="pickled Python objects"):
        ng.load(buffer)
    assert _UNPICKLED == []


def test_custom_activation_is_refused_at_save(network):
    custom = dataclasses.replace(network, architecture=Architecture(hidden=(4, 3), activation=("tanh", lambda h: h * 2.0)))
    with pytest.raises(SpecificationError, match="custom activation"):
        custom.save(io.BytesIO())


def test_non_treatment_contrasts_are_refused_at_save(data):
    fit = ng.glm("y ~ C(g, contr.sum)", data, family="poisson")
    with pytest.raises(SpecificationError, match=r"SumContrasts.*treatment contrasts only"):
        fit.save(io.BytesIO())


def test_loading_runs_no_code(glm, network):
    raw_glm, raw_net = _saved(glm), _saved(network)
    real_compile = builtins.compile
    calls: list[str] = []

    def forbidden(*args, **kwargs):
        calls.append("eval/exec/unpickle")
        raise AssertionError("load() tried to evaluate or unpickle something")

    def parse_only(source, filename, mode, flags=0, *args, **kwargs):
        # ast.parse compiles to a syntax tree only (formulaic parses the formula); that runs nothing.
        if not flags & ast.PyCF_ONLY_AST:
            return forbidden()
        return real_compile(source, filename, mode, flags, *args, **kwargs)

    with (
        mock.patch.object(builtins, "eval", forbidden),
        mock.patch.object(builtins, "exec", forbidden),
        mock.patch.object(builtins, "compile", parse_only),
        mock.patch.object(pickle, "loads", forbidden),
        mock.patch.object(pickle, "load", forbidden),
    ):
        loaded_glm = ng.load(io.BytesIO(raw_glm))
        loaded_net = ng.load(io.BytesIO(raw_net))
    assert calls == []
    assert isinstance(loaded_glm, ng.FitResult) and isinstance(loaded_net, ng.NetworkResult)


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda fields: fields["design"]["spec"].update(formula="1 + open('pwned.txt')"), "uses \"open\\('pwned.txt'\\)\""),
        (lambda fields: fields["design"]["spec"].update(formula="1 + np.load('x.npy')"), "np.load"),
        (lambda fields: fields.update(family="__import__('os').system('echo')"), "unknown family"),
        (lambda fields: fields["info"].update(status="os.system"), "unknown fit status"),
        (lambda fields: fields["statistics"].update(deviance={"call": "os.system"}), "statistics.deviance must be a float"),
    ],
)
def test_resealed_files_with_code_are_refused(glm, edit, message, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    spec, arrays = model_file_entries(_saved(glm))
    edit(spec["result"])
    with pytest.raises(ModelFileError, match=message):
        ng.load(resealed_model_file(spec, arrays))
    assert list(tmp_path.iterdir()) == []


def test_save_writes_the_path_as_given(glm, tmp_path):
    path = tmp_path / "model"
    glm.save(str(path))
    assert path.exists() and [p.name for p in tmp_path.iterdir()] == ["model"]
    assert np.array_equal(ng.load(str(path)).coef, glm.coef)


# ---- the default file holds no training data -----------------------------------------------------
def test_default_file_holds_no_training_rows(glm, data):
    buffer = io.BytesIO()
    glm.save(buffer)
    spec, arrays = model_file_entries(buffer.getvalue())
    assert spec["include_data"] is False and spec["result"]["design"]["data"] is None and spec["result"]["fitted"] is None
    n = len(data)
    assert all(n not in values.shape for values in arrays.values()), {k: v.shape for k, v in arrays.items()}
    text = json.dumps(spec)
    assert not any(label in text for label in data.index[:20])
    loaded = ng.load(io.BytesIO(buffer.getvalue()))
    assert not loaded.has_data and "Model file: saved without training data" in str(loaded.summary())
    with pytest.raises(ModelFileError, match="include_data=True"):
        _ = loaded.fitted_mu
    with pytest.raises(ModelFileError, match="include_data=True"):
        ng.influence(loaded)
    with pytest.raises(ModelFileError, match="include_data=True"):
        ng.plots.observed_vs_fitted(loaded)


# ---- format 1 files (written by neuralglm 0.1.0 at commit 40806d8; see tests/data/README.md) ------
FIXTURES = pathlib.Path(__file__).parents[1] / "data"


@pytest.fixture(scope="module")
def v1_expected() -> dict:
    return json.loads((FIXTURES / "v1_expected.json").read_text())


def _v1_new_data(expected: dict) -> pd.DataFrame:
    split = expected["new_data"]
    return pd.DataFrame(split["data"], index=split["index"], columns=split["columns"])


def test_format_1_glm_loads_with_the_same_numbers(v1_expected):
    expected = v1_expected["glm"]
    loaded = ng.load(FIXTURES / "glm_v1.npz")
    assert loaded.kind == "glm" and loaded.source.format_version == 1 and loaded.has_data
    new = _v1_new_data(v1_expected)
    assert loaded.predict(new).tolist() == expected["predict"]
    assert loaded.predict(new, type="link").tolist() == expected["link"]
    assert loaded.coef.to_dict() == expected["coef"]
    assert (loaded.deviance, loaded.aic, loaded.n_obs) == (expected["deviance"], expected["aic"], expected["n_obs"])
    assert loaded.predict().tolist() == expected["fitted"] and loaded.info.status.name == expected["status"]
    # The summary is the v1 code's, number for number; only the layout changed since: the file
    # line, and interval columns named lower/upper with the level in a title above the table.
    v1_layout = (
        str(loaded.summary())
        .replace("Model file: saved with training data (40 rows)\n", "")
        .replace("Coefficients, with Wald z tests and 95% confidence intervals (lower, upper):\n", "")
        .replace("    lower    upper signif", "    0.025    0.975 signif")
    )
    assert v1_layout == expected["summary"]
    # Written again, it is a format-2 file with the same predictions.
    again = ng.load(io.BytesIO(_saved(loaded)))
    assert again.source.format_version == serialize.FORMAT_VERSION and again.predict(new).tolist() == expected["predict"]


def test_format_1_glm_history_objective_is_deviance_per_unit_weight():
    # v1 IRLS histories hold the total deviance of each iteration; today's objective divides it by
    # the training rows' total weight (as IRLS does now), so it is not NaN for a file with data.
    loaded = ng.load(FIXTURES / "glm_v1.npz")
    history = loaded.info.history
    assert len(history) == loaded.info.n_iter and np.isfinite(history["objective"]).all()
    total_weight = float(np.sum(loaded.design.total_weights))
    np.testing.assert_allclose(history["objective"].iloc[-1], loaded.deviance / total_weight, rtol=1e-10)
    with np.load(FIXTURES / "glm_v1.npz") as archive:  # the written per-iteration deviances (the frame's 2nd column)
        spec = json.loads(archive[serialize.SPEC_ENTRY].tobytes())
        frame = spec["result"]["dataclass"]["fields"]["info"]["dataclass"]["fields"]["history"]["frame"]
        assert frame["columns"][1] == "deviance"
        written = archive[frame["columns_values"][1]["array"]]
    np.testing.assert_allclose(history["objective"].to_numpy(), written / total_weight, rtol=1e-12)


def test_format_1_glm_without_data_loads_and_asks_for_the_data(v1_expected):
    loaded = ng.load(FIXTURES / "glm_nodata_v1.npz")
    assert not loaded.has_data and loaded.predict(_v1_new_data(v1_expected)).tolist() == v1_expected["glm"]["predict"]
    with pytest.raises(ModelFileError, match="include_data=True"):
        loaded.residuals()


def test_format_1_network_loads_with_the_same_numbers_and_status(v1_expected):
    expected = v1_expected["network"]
    loaded = ng.load(FIXTURES / "network_v1.npz")
    assert loaded.kind == "network"
    assert loaded.predict(_v1_new_data(v1_expected)).tolist() == expected["predict"]
    assert (loaded.deviance, loaded.aic, loaded.best_epoch, loaded.n_params) == (
        expected["deviance"],
        expected["aic"],
        expected["best_epoch"],
        expected["n_params"],
    )
    assert loaded.predict().tolist() == expected["fitted"]
    # v1 wrote MAX_EPOCHS; it reads as that member where it still exists, else as ITERATION_LIMIT.
    assert loaded.info.status.name in (expected["status"], "ITERATION_LIMIT")
    # v1 wrote the history in the gradient solvers' former columns; it is read into the columns
    # every solver now writes, the values carried over (train_deviance is the objective).
    assert expected["history_columns"][:2] == ["epoch", "train_deviance"]
    assert list(loaded.info.history.columns) == list(HISTORY_COLUMNS)
    assert loaded.info.history["iteration"].iloc[-1] == loaded.info.n_iter
    assert "Training history" in str(loaded.summary())
