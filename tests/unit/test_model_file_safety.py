"""Hostile model files: loading and predicting never run code from a file, and bad files are refused at load.

Each crafted file is a valid model file whose spec was edited and whose checksums were then
recomputed the way the writer computes them (so only the content checks stand between the
file and the interpreter). Every code payload would create a sentinel file in ``tmp_path``;
the tests check that it is never created, at load and at predict.
"""

from __future__ import annotations

import dataclasses
import io
import json
import os
import warnings
import zipfile

import formulaic
import numpy as np
import pandas as pd
import pytest

import neuralglm as ng
from helpers import model_file_entries, resealed_model_file
from neuralglm.errors import ModelFileError
from neuralglm.results import model_file, serialize
from neuralglm.results.formula_state import check_formula


def _frame(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({"x": rng.uniform(0.5, 2.0, size=n), "g": rng.choice(["a", "b"], size=n)})
    frame["y"] = rng.poisson(np.exp(0.2 + 0.3 * frame["x"]))
    return frame


@pytest.fixture(scope="module")
def data() -> pd.DataFrame:
    return _frame(60, seed=0)


@pytest.fixture(scope="module")
def raw(data) -> bytes:
    buffer = io.BytesIO()
    ng.glm("y ~ np.log(x) + C(g)", data, family="poisson").save(buffer)
    return buffer.getvalue()


def _payloads(sentinel: str) -> dict[str, str]:
    """Expressions that would create ``sentinel`` if evaluated (or reach what could)."""
    s = repr(sentinel)
    return {
        "import": f"__import__('os').system('touch ' + {s})",
        "f2py chain": f"np.f2py.os.system('touch ' + {s})",
        "list subscript chain": f"[np][0].f2py.os.system('touch ' + {s})",
        "np.lib chain": f"np.lib.npyio.os.system('touch ' + {s})",
        "lambda": f"(lambda: open({s}, 'w'))()",
        "comprehension": f"[open({s}, 'w') for _ in [1]]",
        "generator": f"list(open({s}, 'w') for _ in [1])",
        "dunder": "x.__class__.__base__.__subclasses__()",
        "builtins dunder": f"__builtins__.open({s}, 'w')",
        "open": f"open({s}, 'w')",
        "eval": f"eval(\"open({s}, 'w')\")",
        "getattr": f"getattr(np, 'save')({s}, x)",
        "np.save": f"np.save({s}, x)",
        "np.load": f"np.load({s})",
        "print": f"print(x, file=open({s}, 'w'))",
        "f-string": f"f\"{{open({s}, 'w')}}\"",
        "subscript": f"np.__dict__['save']({s}, x)",
        "walrus": f"(f := open({s}, 'w'))",
        "transform keyword": f"center(x, lambda_=open({s}, 'w'))",
        "ufunc argument": f"np.log(open({s}, 'w'))",
        # Backquotes inside a string literal are not column names to formulaic: a check that blanked
        # every `...` span would have seen only np.where('Q0' == '', x, x) here.
        "backquotes in strings": f"np.where('`' + np.str_(np.f2py.os.system('touch ' + {s})) + '`' == '', x, x)",
        "backquoted string call": f"I('`' + str(open({s}, 'w')) + '`')",
        "backquotes in levels": f"C(g, levels=['`', np.save({s}, x) == '`'])",
    }


PAYLOAD_NAMES = list(_payloads("s"))


def _parses(expr: str) -> bool:
    try:
        formulaic.ModelSpec(f"np.log(x) + {expr}")
    except Exception:  # formulaic may fail on the payload's value, after running it
        return False
    return True


# Payloads that formulaic parses into a formula (the others fail at parsing, before any evaluation).
PARSED_PAYLOADS = [name for name, expr in _payloads("s").items() if _parses(expr)]


@pytest.mark.parametrize("name", PAYLOAD_NAMES)
def test_stored_formula_with_code_is_refused_and_runs_nothing(raw, data, name, tmp_path):
    sentinel = tmp_path / "pwned"
    payload = _payloads(str(sentinel))[name]
    spec, arrays = model_file_entries(raw)
    spec["result"]["design"]["spec"]["formula"] = f"np.log(x) + C(g) + {payload}"
    with pytest.raises(ModelFileError, match="The formula") as raised:
        ng.load(resealed_model_file(spec, arrays))
    # The message names the term (as formulaic normalized it) or the formula that holds it.
    assert str(sentinel) in str(raised.value) or "__class__" in str(raised.value)
    assert not sentinel.exists() and list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("side", ["response", "right-hand side"])
@pytest.mark.parametrize("name", PAYLOAD_NAMES)
def test_stored_formula_text_with_code_is_refused_and_runs_nothing(raw, data, name, side, tmp_path):
    # The formula text (response included) is parsed again by ng.heldout_deviance and by plots
    # given data: a file whose text differs from its checked spec must be refused at load too.
    sentinel = tmp_path / "pwned"
    payload = _payloads(str(sentinel))[name]
    spec, arrays = model_file_entries(raw)
    text = f"{payload} ~ np.log(x) + C(g)" if side == "response" else f"y ~ np.log(x) + C(g) + {payload}"
    spec["result"]["design"]["formula"] = text
    with pytest.raises(ModelFileError, match="formula"):
        ng.heldout_deviance(ng.load(resealed_model_file(spec, arrays)), data)
    assert not sentinel.exists() and list(tmp_path.iterdir()) == []


def test_stored_formula_text_of_an_honest_file_is_accepted(raw, data):
    spec, arrays = model_file_entries(raw)
    spec["result"]["design"]["formula"] = "cbind(y, y) ~ np.log(x) + C(g)"
    assert ng.load(resealed_model_file(spec, arrays)).design.formula.startswith("cbind")
    assert np.isfinite(ng.heldout_deviance(ng.load(io.BytesIO(raw)), data))


@pytest.mark.parametrize("where", ["structure", "encoder_state", "transform_state"])
@pytest.mark.parametrize("name", ["import", "open", "lambda", "dunder", "subscript"])
def test_term_or_factor_expression_with_code_is_refused(raw, name, where, tmp_path):
    sentinel = tmp_path / "pwned"
    payload = _payloads(str(sentinel))[name]
    spec, arrays = model_file_entries(raw)
    model_spec = spec["result"]["design"]["spec"]
    if where == "structure":
        model_spec["structure"][1]["scoped_terms"][0]["factors"][0][0] = payload
    elif where == "encoder_state":
        model_spec["encoder_state"][payload] = model_spec["encoder_state"].pop("C(g)")
    else:
        model_spec["transform_state"] = {"dict": [[payload, {"dict": []}]]}
    with pytest.raises(ModelFileError, match="The formula term") as raised:
        ng.load(resealed_model_file(spec, arrays))
    assert payload in str(raised.value) or repr(payload) in str(raised.value)
    assert list(tmp_path.iterdir()) == []


def test_the_payloads_are_live(data, tmp_path):
    # Control: evaluated by formulaic without the checks, a payload does create its sentinel.
    sentinel = tmp_path / "pwned.npy"
    hostile = formulaic.ModelSpec(f"np.log(x) + {_payloads(str(sentinel))['np.save']}")
    try:
        hostile.get_model_matrix(data)
    except Exception:  # formulaic may fail on the payload's value, after running it
        pass
    assert sentinel.exists()
    assert len(PARSED_PAYLOADS) >= 12


@pytest.mark.parametrize("name", ["backquotes in strings", "backquotes in levels"])
def test_the_backquote_payloads_are_live_and_parsed(data, name, tmp_path):
    # Control for the payloads that hide code between backquotes inside string literals: formulaic
    # parses them and, unchecked, runs their code; the checks above refuse them.
    assert name in PARSED_PAYLOADS
    sentinel = tmp_path / "pwned"
    hostile = formulaic.ModelSpec(f"np.log(x) + {_payloads(str(sentinel))[name]}")
    try:
        hostile.get_model_matrix(data)
    except Exception:  # formulaic may fail on the payload's value, after running it
        pass
    assert list(tmp_path.iterdir()) != []  # the sentinel (np.save adds .npy)
    with pytest.raises(ModelFileError, match="The formula term"):
        check_formula(hostile, ModelFileError)


@pytest.mark.parametrize("name", PARSED_PAYLOADS)
def test_predict_checks_a_loaded_formula_again_before_evaluating_it(raw, data, name, tmp_path):
    # A loaded model whose formula was swapped in memory after loading: predict refuses it before
    # formulaic evaluates anything (the check at load is not the only line of defence).
    sentinel = tmp_path / "pwned"
    payload = _payloads(str(sentinel))[name]
    loaded = ng.load(io.BytesIO(raw))
    hostile = formulaic.ModelSpec(f"np.log(x) + {payload}")
    tampered = dataclasses.replace(loaded, design=dataclasses.replace(loaded.design, spec=hostile))
    with pytest.raises(ModelFileError, match="The formula term"):
        tampered.predict(data)
    with pytest.raises(ModelFileError, match="The formula term"):
        tampered.features(data) if tampered.kind == "network" else tampered.predict(data, type="link")
    assert not sentinel.exists() and list(tmp_path.iterdir()) == []


def test_the_allowlist_accepts_the_documented_terms():
    spec = formulaic.ModelSpec(
        "np.log(x) + np.sqrt(x) + np.exp(x / 10) + I(x ** 2 - 1) + center(x) + scale(x) + standardize(x) + poly(x, 2) "
        "+ bs(x, df=3) + C(g, contr.treatment(base='b')) + C(g, levels=['a', 'b']) + log(x) + {x + 1} + `my col` + x:g + np.where(x > 1, 1, 0)"
    )
    check_formula(spec, ModelFileError)


@pytest.mark.parametrize(
    "term",
    [
        "I(10**10**10)",
        "I('a' * 10**12)",
        "I([0] * 10**12)",
        "I(x ** 65)",
        "I(2 ** x)",
        "I((((10**64)**64)**64)**64)",  # each exponent allowed; exact integers of 10**16777216
        "np.array(10**30)",  # an object array of Python integers, which later arithmetic keeps exact
        "I(99999999999999999999 + x)",
        "poly(x, 10**8)",  # as many columns as the degree: predict would allocate rows × 10**8
        "poly(x, degree=100)",
        "bs(x, df=10**8)",
        "bs(x, degree=1000)",
    ],
)
def test_terms_that_would_exhaust_memory_or_time_are_refused_quickly(raw, term):
    # Python evaluates 10**10**10 and 'a' * 10**12 exactly (hours, terabytes): refused from the text alone,
    # as is any integer (literal or constant arithmetic) past int64, so no chain of allowed steps grows one.
    spec, arrays = model_file_entries(raw)
    spec["result"]["design"]["spec"]["formula"] = f"np.log(x) + C(g) + {term}"
    with pytest.raises(ModelFileError, match="The formula term") as raised:
        ng.load(resealed_model_file(spec, arrays))
    shown = term.removeprefix("I(").removesuffix(")") if term.startswith("I(") else term
    assert shown.replace(" ", "") in str(raised.value).replace(" ", "")


def test_bounded_powers_and_string_arguments_are_accepted():
    spec = formulaic.ModelSpec(
        "I(x ** -1) + I(x ** 2.5) + I(-x ** 64) + np.power(x, 2) + I(x * 2**62) + I(x + 7 // 2 % 3) + C(g, levels=['a', 'b']) + I(g == 'a')"
        " + poly(x, 3) + poly(x, degree=64) + bs(x, df=5, degree=3) + bs(x, knots=[1.0, 1.5])"
    )
    check_formula(spec, ModelFileError)


def test_backquoted_column_names_formulaic_renames_are_accepted():
    # formulaic turns `1a` into the name _1a: a column lookup, not a private name.
    spec = formulaic.ModelSpec("np.log(`1a`) + center(`my col`)")
    check_formula(spec, ModelFileError)


def test_saving_a_formula_outside_the_allowlist_is_refused_at_save(data):
    # np.nan_to_num is a numpy function, not a ufunc: formulaic evaluates it, model files do not allow it.
    model = ng.glm("y ~ np.nan_to_num(x)", data, family="poisson")
    with pytest.raises(ng.errors.SpecificationError, match=r"np\.nan_to_num"):
        model.save(io.BytesIO())


# ---- files that are not model files, or are malformed --------------------------------------------
def test_a_missing_path_none_and_a_folder_are_refused(tmp_path):
    with pytest.raises(ModelFileError, match="does not exist"):
        ng.load(tmp_path / "missing.npz")
    with pytest.raises(ModelFileError, match=r"'path' argument of load .* Got None"):
        ng.load(None)
    with pytest.raises(ModelFileError, match="is a folder"):
        ng.load(tmp_path)


def test_a_spec_nested_200000_deep_is_refused(raw):
    spec, arrays = model_file_entries(raw)
    text = json.dumps(spec).replace('"formula": "y ~', '"deep": ' + "[" * 200_000 + "]" * 200_000 + ', "formula": "y ~', 1)
    buffer = io.BytesIO()
    np.savez(buffer, **{serialize.SPEC_ENTRY: np.frombuffer(text.encode(), dtype=np.uint8), **arrays})
    with pytest.raises(ModelFileError, match="corrupt"):
        ng.load(io.BytesIO(buffer.getvalue()))
    # Nested deeper than the format ever writes, but parseable: refused as well.
    spec["result"]["deep"] = json.loads("[" * 100 + "]" * 100)
    with pytest.raises(ModelFileError, match="nested deeper"):
        ng.load(resealed_model_file(spec, arrays))


def test_an_array_header_claiming_256_tib_is_refused_before_allocating(raw):
    spec, arrays = model_file_entries(raw)
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, {"descr": "<f8", "fortran_order": False, "shape": (2**45,)})  # 256 TiB
    buffer = io.BytesIO()
    np.savez(buffer, **{serialize.SPEC_ENTRY: np.frombuffer(json.dumps(spec).encode(), dtype=np.uint8), **arrays})
    with zipfile.ZipFile(buffer, "a") as archive:
        archive.writestr("huge.npy", header.getvalue() + b"\0" * 64)
    spec = {k: v for k, v in spec.items() if k not in ("spec_sha256",)}
    spec["arrays"] = {**spec["arrays"], "huge": "0" * 64}
    spec["spec_sha256"] = model_file.spec_digest(spec)
    rebuilt = io.BytesIO()
    np.savez(rebuilt, **{serialize.SPEC_ENTRY: np.frombuffer(json.dumps(spec).encode(), dtype=np.uint8), **arrays})
    with zipfile.ZipFile(rebuilt, "a") as archive:
        archive.writestr("huge.npy", header.getvalue() + b"\0" * 64)
    with pytest.raises(ModelFileError, match=r"claims an array of shape \(35184372088832,\)"):
        ng.load(io.BytesIO(rebuilt.getvalue()))


@pytest.mark.parametrize(
    "key, values, message",
    [
        ("coef", np.zeros(7), r"array 'coef' has shape \(7,\)"),
        ("coef", np.array(["a", "b", "c"]), r"array 'coef' has dtype <U1, where floating-point numbers belong"),
        ("vcov", np.zeros((3, 2)), r"array 'vcov' has shape \(3, 2\)"),
        ("std_errors", np.zeros((3, 1)), r"array 'std_errors' has shape \(3, 1\)"),
    ],
)
def test_arrays_of_the_wrong_shape_or_dtype_are_refused_at_load(raw, data, key, values, message):
    spec, arrays = model_file_entries(raw)
    arrays[key] = values
    with pytest.raises(ModelFileError, match=message):
        ng.load(resealed_model_file(spec, arrays))


def test_network_weights_of_the_wrong_shape_or_dtype_are_refused_at_load(data):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ng.errors.ConvergenceWarning)  # a few iterations: the weights only need shapes
        net = ng.fit("y ~ x + C(g)", data, family="poisson", hidden=(3,), solver="lbfgs", epochs=20, seed=0)
    buffer = io.BytesIO()
    net.save(buffer)
    spec, arrays = model_file_entries(buffer.getvalue())
    for key, values, message in [
        ("params.0.weight", np.zeros((2, 4)), r"'params\.0\.weight' has shape \(2, 4\)"),
        ("params.1.weight", np.zeros((3, 1), dtype=bool), "dtype bool"),
        ("scaling.mean", np.array(["1", "2"]), "dtype <U1"),
        ("validation_rows", np.zeros(2), "dtype float64"),
    ]:
        with pytest.raises(ModelFileError, match=message):
            ng.load(resealed_model_file(spec, {**arrays, key: values}))


def test_wrong_types_in_the_spec_are_refused_at_load(raw):
    for edit, message in [
        (lambda r: r["statistics"].update(n_obs="60"), "statistics.n_obs must be a float"),
        (lambda r: r.update(rank=True), "result.rank must be a int"),
        (lambda r: r["design"].update(column_names=[1, 2, 3]), "design.column_names must be a list of strings"),
        (lambda r: r["info"].update(history=None), "info.history must be a dict"),
        (lambda r: r.pop("coef"), "lacks the entry 'coef'"),
    ]:
        spec, arrays = model_file_entries(raw)
        edit(spec["result"])
        with pytest.raises(ModelFileError, match=message):
            ng.load(resealed_model_file(spec, arrays))


@pytest.mark.parametrize(
    "converged, status",
    [
        (True, "ITERATION_LIMIT"),
        (True, "STALLED"),
        (True, "EARLY_STOPPED"),
        (True, "MAX_ITER"),
        (False, "CONVERGED"),
        (False, "CLOSED_FORM"),
    ],
)
def test_a_converged_flag_that_contradicts_the_status_is_refused(raw, converged, status):
    spec, arrays = model_file_entries(raw)
    spec["result"]["info"].update(converged=converged, status=status)
    with pytest.raises(ModelFileError, match=f"converged={str(converged).lower()} with the status"):
        ng.load(resealed_model_file(spec, arrays))


@pytest.mark.parametrize(
    "converged, status", [(True, "CONVERGED"), (False, "ITERATION_LIMIT"), (True, "SEPARATION"), (False, "SEPARATION")]
)
def test_a_converged_flag_that_matches_the_status_loads(raw, converged, status):
    spec, arrays = model_file_entries(raw)
    spec["result"]["info"].update(converged=converged, status=status)
    info = ng.load(resealed_model_file(spec, arrays)).info
    assert (info.converged, info.status.name) == (converged, status)


def test_status_names_of_format_1_are_the_enum_aliases():
    from neuralglm.fit.info import Status
    from neuralglm.results.parts import status_from_name

    assert status_from_name("MAX_ITER") is status_from_name("MAX_EPOCHS") is Status.ITERATION_LIMIT
    assert all(status_from_name(member.name) is member for member in Status)
    with pytest.raises(ModelFileError, match="unknown fit status 'DONE'"):
        status_from_name("DONE")


def test_load_leaves_the_working_folder_untouched(raw, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    ng.load(io.BytesIO(raw)).predict(_frame(5, seed=1))
    assert os.listdir(tmp_path) == []


def test_a_network_file_with_an_unknown_training_dtype_is_refused(data):
    # The training dtype is read back for refits (bootstrap): anything but float32/float64 is refused at load.
    buffer = io.BytesIO()
    ng.fit("y ~ np.log(x) + C(g)", data, family="poisson", hidden=(2,), solver="lbfgs", l2=1.0, seed=0).save(buffer)
    spec, arrays = model_file_entries(buffer.getvalue())
    assert spec["kind"] == "network"
    assert ng.load(resealed_model_file(spec, arrays)).dtype == "float32"
    spec["result"]["dtype"] = "complex128"
    with pytest.raises(ModelFileError, match="dtype must be 'float32' or 'float64'; got 'complex128'"):
        ng.load(resealed_model_file(spec, arrays))
