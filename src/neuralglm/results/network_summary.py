"""The printable summary of a fitted network (text and notebook HTML)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from neuralglm.results.balance import balance_lines
from neuralglm.results.summary import family_params_lines, html_summary

AIC_CAVEAT = (
    "AIC/BIC use the nominal parameter count k (every weight and bias). Network parameters are not identifiable "
    "(units can be permuted, some may be redundant), so the count is nominal: k overstates the effective degrees of "
    "freedom and the usual asymptotics do not hold. Compare held-out deviance before trusting these criteria."
)
PENALIZED_AIC_CAVEAT = (
    "AIC/BIC use the nominal parameter count k (every coefficient). The l2 penalty shrinks the coefficients, so the "
    "effective degrees of freedom are fewer than k and these criteria are nominal: compare held-out deviance."
)
CONDITIONAL_TABLE = "the features are treated as fixed covariates, so the standard errors ignore the uncertainty of the hidden layers."
OVERPARAMETERIZED = (
    "more parameters than observations (df_resid ≤ 0): the network can interpolate the data, and the dispersion, AIC "
    "and BIC have nothing to be estimated from. Use fewer hidden units, an l2 penalty, or more data."
)


def aic_caveat(net) -> str | None:
    """The note printed under AIC/BIC: why k is nominal for a network (or a penalized GLM); None for an unpenalized GLM.

    A network without hidden layers and without a penalty on its output layer is the GLM itself
    (polished to the maximum-likelihood estimates), whose AIC is R's.
    """
    if net.architecture.n_hidden:
        return AIC_CAVEAT
    if net.control.l2 and net.control.penalize_output:
        return PENALIZED_AIC_CAVEAT
    return None


def _status_words(info) -> str:
    """The status as a summary says it: "converged", "stalled at working precision", "iteration limit", …"""
    if info.at_precision:  # set by the L-BFGS driver for a stall the training dtype cannot get past
        return "stalled at working precision"
    return info.status.label


def _history_rows(history: pd.DataFrame, best_epoch: int, *, validation: bool) -> pd.DataFrame:
    """The first, best and last rows of the training history, in the columns a summary shows."""
    best = set(np.flatnonzero(history["iteration"].to_numpy() == best_epoch).tolist())
    picks = sorted({0, len(history) - 1} | best) if len(history) else []
    columns = ["iteration", "objective", *(["validation_deviance"] if validation else []), "seconds"]
    return history.iloc[picks][columns]


@dataclass(frozen=True)
class NetworkSummary:
    """Printable summary of a :class:`~neuralglm.NetworkResult`: ``str()`` for text, ``_repr_html_`` for notebooks.

    Attributes
    ----------
    header, footer : text lines.
    history : selected rows of the training history (first, best, last).
    coefficients : output-layer table conditional on the learned features, or ``None``.
    """

    header: tuple[str, ...]
    history: pd.DataFrame
    footer: tuple[str, ...]
    coefficients: pd.DataFrame | None = None

    @classmethod
    def from_fit(cls, net, coefficients: bool = False) -> NetworkSummary:
        info, control, arch = net.info, net.control, net.architecture
        header = [f"Neural GLM · {net.family}(link={net.link}) · {arch.describe(net.scaling.n_in)}"]
        formula_line = f"Formula: {net.formula}"
        if net.design.offset_source.any:
            formula_line += f"   Offset: {net.design.offset_source.describe()}"
        header.append(formula_line)
        if net.scaling.standardized:
            header.append(f"Standardized inputs: {', '.join(net.scaling.standardized)}")
        dispersion = {
            "fixed": f"{net.dispersion:g} (fixed)",
            "pearson": f"{net.dispersion:.6g} (Pearson, df = n − k)",
            "user": f"{net.dispersion:g} (given)",
        }[net.dispersion_method]
        header.append(
            f"Parameters (k): {net.n_params:,}   Observations: {net.n_obs:,.0f}   Df residual (n − k): {net.df_resid:,.0f}   Dispersion: {dispersion}"
        )
        unit = "iterations" if info.solver == "lbfgs" else "epochs"
        penalty_scope = " on hidden layers only" if control.l2 and not control.penalize_output else ""
        if info.solver == "lbfgs":
            settings = f"tol {control.tol:g}"
        else:
            rate = "schedule" if callable(control.learning_rate) else f"{control.learning_rate:g}"
            settings = f"batch {control.batch_size}, learning rate {rate}"
        header.append(
            f"Solver: {info.solver}, {info.n_iter} {unit} ({settings}, l2 {control.l2:g}{penalty_scope}, {net.dtype}, seed {net.seed}) · "
            f"{_status_words(info)} · {info.seconds:.2f} s"
        )
        if control.early_stopping:
            header.append(
                f"Early stopping: validation fraction {control.validation_fraction:g} ({len(net.validation_rows):,} rows), "
                f"best epoch {net.best_epoch} of {info.n_iter}"
            )
        if info.status.name not in ("CONVERGED", "EARLY_STOPPED"):
            # A stall at working precision did not warn (the training dtype can go no further):
            # its line is a note; anything else short of the optimum is a warning, as it warned.
            header.append(f"{'Note' if info.at_precision else 'Warning'}: {info.message}")
        elif info.status.name == "CONVERGED" and info.solver in ("adam", "sgd"):
            # Adam/SGD have no convergence criterion of their own: a converged minibatch fit is a
            # network without hidden layers polished to its optimum (fit/polish.py); say how.
            header.append(f"Note: {info.message}")
        if net.df_resid <= 0:
            header.append(f"Warning: {OVERPARAMETERIZED}")
        shown = _history_rows(info.history, net.best_epoch, validation=control.early_stopping)
        footer = [
            f"Deviance {net.deviance:,.6g} · Null deviance {net.null_deviance:,.6g} · Deviance explained {100 * net.deviance_explained:.2f}%",
            f"Log-likelihood {net.loglik:,.6g} · AIC {net.aic:,.6g} · BIC {net.bic:,.6g}",
            *family_params_lines(net.family_params),
            *balance_lines(net),
        ]
        caveat = aic_caveat(net)
        if caveat is not None:
            footer.append(f"Note: {caveat}")
        table = None
        if coefficients:
            table = net.output_glm().coef_table()
        return cls(tuple(header), shown.reset_index(drop=True), tuple(footer), table)

    def __str__(self) -> str:
        lines = [*self.header, "", "Training history (mean deviance per unit weight):", self.history.to_string(index=False), ""]
        if self.coefficients is not None:
            lines += [
                f"Output layer refitted as a GLM, conditional on learned features: {CONDITIONAL_TABLE}",
                self.coefficients.to_string(float_format=lambda v: f"{v:.6g}"),
                "",
            ]
        lines += list(self.footer)
        return "\n".join(lines)

    def __repr__(self) -> str:
        return str(self)

    def _repr_html_(self) -> str:
        parts = [self.history.to_html(index=False, float_format=lambda v: f"{v:.6g}")]
        if self.coefficients is not None:
            parts += [
                f"<div>Output layer refitted as a GLM, conditional on learned features: {CONDITIONAL_TABLE}</div>",
                self.coefficients.to_html(float_format=lambda v: f"{v:.6g}"),
            ]
        return html_summary(self.header, parts, self.footer)
