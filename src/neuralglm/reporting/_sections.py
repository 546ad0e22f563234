"""The report's sections for one model: summary, coefficients or architecture, statistics, diagnostics, calibration, effects."""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import pandas as pd

from neuralglm import effects
from neuralglm.errors import NeuralGLMError
from neuralglm.model.architecture import activation_name
from neuralglm.reporting._html import Section, escape, figure, table


@dataclass(frozen=True)
class Options:
    """How much the report computes: the ``top`` inputs by importance get partial dependence plots and H statistics."""

    top: int = 3
    n_repeats: int = 5
    effect_rows: int = 2000  # rows sampled for partial dependence and H on large data
    seed: int = 0
    folds: int | None = None


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", str(text).lower()).strip("-") or "model"


def new_figure(size):
    """A figure outside pyplot: nothing to close, and the caller's backend and open figures are left alone."""
    from matplotlib.figure import Figure

    return Figure(figsize=size, layout="constrained")


def _figure(draw, size=(6.0, 4.2), caption=None, alt="figure") -> str:
    fig = new_figure(size)
    draw(fig.subplots())
    return figure(fig, caption, alt)


def _overview(fit, anchor: str) -> Section:
    text = escape(str(fit.summary()))
    return Section(anchor, "Summary", f"<pre>{text}</pre>")


def _coefficients(fit, anchor: str) -> Section:
    if fit.kind == "glm":
        coefficients = fit.coef_table()
        coefficients.index.name = "term"
        note = '<p class="note">Estimates to six significant digits; intervals at the 95% level.</p>'
        return Section(anchor, "Coefficients", note + table(coefficients, table_id=f"{anchor}-table"))
    arch = fit.architecture
    layers = [{"layer": "input", "units": fit.scaling.n_in, "activation": "–"}]
    names = [activation_name(a) for a in arch.activations]
    layers += [
        {"layer": f"hidden {j + 1}", "units": width, "activation": act}
        for j, (width, act) in enumerate(zip(arch.hidden, names, strict=True))
    ]
    layers.append({"layer": "output (a GLM on the last layer)", "units": 1, "activation": f"inverse {fit.link} link"})
    frame = pd.DataFrame(layers).set_index("layer")
    note = f'<p class="note">{escape(arch.describe(fit.scaling.n_in))}; {fit.n_params} parameters.</p>'
    return Section(anchor, "Architecture", note + table(frame, table_id=f"{anchor}-table"))


def data_scores(fit, data: pd.DataFrame):
    """``(design, deviance, % deviance explained)`` of ``fit`` on ``data``; the % needs the training rows' null model (NaN without them)."""
    from neuralglm.evaluate import evaluation_design, heldout_deviance, heldout_scores

    if not fit.has_data:  # a model saved without its data: no training mean to measure the data against
        return evaluation_design(fit, data), heldout_deviance(fit, data), float("nan")
    scores = heldout_scores(fit, data)
    return scores.design, scores.deviance, 100.0 * (1.0 - scores.deviance / scores.null_deviance)


def _statistics(fit, data: pd.DataFrame, anchor: str) -> Section:
    design, deviance, explained = data_scores(fit, data)
    weights, observed = design.total_weights, design.y
    predicted = fit.predict(data).to_numpy(dtype=np.float64)
    gini = effects.gini(fit, data)["gini"].iloc[0]
    values = {
        "observations (training)": fit.n_obs,
        "residual df (training)": fit.df_resid,
        "deviance (training)": fit.deviance,
        "null deviance (training)": fit.null_deviance,
        "log-likelihood": fit.loglik,
        "AIC": fit.aic,
        "BIC": fit.bic,
        "dispersion": fit.dispersion,
        "rows of the report's data": len(data),
        "deviance on the data": deviance,
        "% deviance explained on the data": explained,
        "balance on the data (Σ predicted / Σ observed)": float(weights @ predicted / (weights @ observed)),
        "Gini on the data": float(gini),
    }
    frame = pd.DataFrame({"value": list(values.values())}, index=pd.Index(list(values), name="statistic"), dtype=object)
    note = '<p class="note">Training statistics as in the summary; the rest computed on the data the report was given.</p>'
    return Section(anchor, "Fit statistics", note + table(frame, table_id=f"{anchor}-table"))


def _diagnostics(fit, data: pd.DataFrame, anchor: str) -> Section:
    from neuralglm import plots

    try:
        fig = new_figure((9.0, 7.0))
        plots.diagnostic_panel(fit, data, axes=fig.subplots(2, 2))
        note = "R's four diagnostic plots of the training rows."
    except NeuralGLMError:  # leverages exist for the fit's own rows only: new data get observed vs predicted instead
        fig = new_figure((9.0, 7.0))
        axes = fig.subplots(2, 2)
        for ax, draw in zip(
            axes.ravel(), (plots.residuals_vs_fitted, plots.qq_plot, plots.scale_location, plots.observed_vs_fitted), strict=True
        ):
            draw(fit, data, ax=ax)
        note = "Residual plots of the given rows (not the training rows, so without leverages)."
    return Section(anchor, "Diagnostics", f'<p class="note">{escape(note)}</p>' + figure(fig, alt="diagnostic plots"))


def _calibration(fit, data: pd.DataFrame, anchor: str) -> Section:
    from neuralglm import plots

    deciles = effects.calibration_table(fit, data).drop(columns="model").set_index("bin")
    chart = _figure(lambda ax: plots.calibration(fit, data, ax=ax), alt="calibration plot")
    note = '<p class="note">Rows sorted by predicted rate and cut into ten groups of equal exposure: observed against predicted rate.</p>'
    return Section(anchor, "Calibration", note + '<div class="grid">' + chart + table(deciles, digits=4) + "</div>")


def _effects(fit, data: pd.DataFrame, anchor: str, options: Options) -> Section:
    from neuralglm import plots

    importance = effects.permutation_importance(fit, data, n_repeats=options.n_repeats, seed=options.seed)
    top = importance.index[: options.top].tolist()
    sample = data if len(data) <= options.effect_rows else data.sample(options.effect_rows, random_state=options.seed)
    parts = [
        f'<p class="note">Permutation importance: increase in deviance when an input is shuffled ({options.n_repeats} repeats, '
        f"mean ± SE). Partial dependence of the top {len(top)} inputs, per unit of exposure and weighted by exposure × weights.</p>",
        '<div class="grid">',
        table(importance[["importance", "se", "relative"]], digits=4, table_id=f"{anchor}-importance"),
        _figure(
            lambda ax: plots.importance_plot(importance, ax=ax), size=(5.5, 0.9 + 0.45 * len(importance)), alt="permutation importance"
        ),
        '</div><h3>Partial dependence</h3><div class="grid">',
    ]
    for name in top:
        curve = effects.partial_dependence(fit, sample, name)
        parts.append(_figure(lambda ax, curve=curve: plots.effect_plot(curve, ax=ax), size=(5.0, 3.6), alt=f"partial dependence on {name}"))
    parts.append("</div>")
    if len(top) >= 2:
        interactions = effects.h_statistic(fit, sample, top, sample=min(200, len(sample)), seed=options.seed)
        parts.append("<h3>Interactions (Friedman's H, link scale)</h3>")
        parts.append('<p class="note">0: the two inputs act additively on the link scale; 1: their joint effect is all interaction.</p>')
        parts.append(table(interactions.set_index(["variable_1", "variable_2"])[["h"]].reset_index(), digits=3, index=False))
    return Section(anchor, "Effects and importance", "".join(parts))


def model_sections(name: str, fit, data: pd.DataFrame, options: Options, prefix: str) -> list[Section]:
    """Every section of one model, anchors prefixed with ``prefix`` (one prefix per model)."""
    sections = [
        _overview(fit, f"{prefix}summary"),
        _coefficients(fit, f"{prefix}coefficients"),
        _statistics(fit, data, f"{prefix}statistics"),
        _diagnostics(fit, data, f"{prefix}diagnostics"),
        _calibration(fit, data, f"{prefix}calibration"),
        _effects(fit, data, f"{prefix}effects", options),
    ]
    if prefix:
        sections = [Section(s.anchor, f"{name}: {s.title}", s.body) for s in sections]
    return sections


def comparison_section(models: dict, data: pd.DataFrame, options: Options) -> Section:
    """Several models side by side: statistics on the data, cross-validation when asked, lift, double lift, Lorenz, calibration."""
    from neuralglm import plots

    rows = {}
    gini = effects.gini(models, data)["gini"]
    for name, fit in models.items():
        _, deviance, explained = data_scores(fit, data)
        parameters = fit.n_params if fit.kind == "network" else fit.rank
        rows[name] = {
            "parameters": int(parameters),
            "AIC": fit.aic,
            "deviance on the data": deviance,
            "% deviance explained": explained,
            "Gini": float(gini[name]),
        }
    summary = pd.DataFrame.from_dict(rows, orient="index")
    summary.index.name = "model"
    parts = [table(summary, table_id="comparison-table")]
    if options.folds:
        from neuralglm.cross_validation import cross_validate

        scores = cross_validate(models, data, folds=options.folds, seed=options.seed)
        scores.index.name = "model"
        parts.append(f"<h3>{options.folds}-fold cross-validation</h3>")
        parts.append(
            '<p class="note">Held-out deviance per observation ± SE across folds; difference to the first model, paired over folds.</p>'
        )
        parts.append(table(scores, digits=4, table_id="cross-validation-table"))
    names = list(models)
    parts.append('<h3>Lift, double lift, Lorenz curves, calibration</h3><div class="grid">')
    lift = effects.lift(models, data)
    parts.append(_figure(lambda ax: plots.lift_plot(lift, ax=ax), alt="lift chart"))
    for other in names[1:]:
        double = effects.double_lift(models[names[0]], models[other], data, names=(names[0], other))
        parts.append(_figure(lambda ax, double=double: plots.double_lift_plot(double, ax=ax), alt=f"double lift {names[0]} vs {other}"))
    curves = effects.lorenz_curve(models, data)
    parts.append(
        _figure(lambda ax: plots.lorenz_plot(curves, ax=ax, gini=effects.gini(models, data)), size=(5.0, 5.0), alt="Lorenz curves")
    )
    parts.append(_figure(lambda ax: plots.calibration_comparison(models, data, ax=ax), alt="calibration comparison"))
    parts.append("</div>")
    return Section("comparison", "Comparison of the models", "".join(parts))
