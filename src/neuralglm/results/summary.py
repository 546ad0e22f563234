"""R-style summaries of fitted models: text, HTML (notebooks) and DataFrames."""

from __future__ import annotations

import html
import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from neuralglm.inference.significance import INTERVAL_COLUMNS, level_label
from neuralglm.results.balance import balance_lines


def format_p_value(p: float) -> str:
    """p-values as R prints them: ``<1e-16`` below machine precision, else 3–4 significant digits."""
    if not np.isfinite(p):
        return "NaN"
    if p < 1e-16:
        return "<1e-16"
    if p < 1e-4:
        return f"{p:.1e}"
    return f"{p:.4f}"


def format_count(value: float) -> str:
    """A count as people write it: ``'64'``, ``'1,234'``; a fractional one (from fractional frequency weights) as ``'83.2'``.

    ``n_obs``, ``df_resid`` and ``df_null`` are floats (frequency weights may be fractional);
    whole values print without a decimal point, others keep their digits instead of being
    rounded to a count they are not.

    Examples
    --------
    >>> format_count(64.0), format_count(1234.0), format_count(83.2), format_count(float("nan"))
    ('64', '1,234', '83.2', 'nan')
    """
    value = float(value)
    if math.isfinite(value) and value == round(value):
        return f"{round(value):,}"
    return f"{value:,.10g}"


def family_params_lines(frame: pd.DataFrame) -> list[str]:
    """One line per estimated family parameter, rounded as MASS's ``print.summary.negbin``.

    R keeps ``max(2 - floor(log10(SE)), 0)`` decimals of both numbers.

    Examples
    --------
    >>> import pandas as pd
    >>> frame = pd.DataFrame({"estimate": [1.17123], "std_error": [0.10586]}, index=["theta"])
    >>> family_params_lines(frame)
    ['Theta: 1.171, Std. Err.: 0.106']
    """
    lines = []
    for name, row in frame.iterrows():
        se = float(row["std_error"])
        digits = max(2 - math.floor(math.log10(se)), 0) if math.isfinite(se) and se > 0 else 4
        lines.append(f"{str(name).capitalize()}: {row['estimate']:.{digits}f}, Std. Err.: {se:.{digits}f}")
    return lines


def interval_title(table: pd.DataFrame) -> str:
    """The line above a coefficient table: its tests and the level of its ``lower``/``upper`` columns.

    Examples
    --------
    >>> import pandas as pd
    >>> table = pd.DataFrame(columns=["estimate", "std_error", "t_value", "p_value", "lower", "upper"])
    >>> table.attrs["level"] = 0.9
    >>> interval_title(table)
    'Coefficients, with Wald t tests and 90% confidence intervals (lower, upper):'
    """
    test = "t" if "t_value" in table.columns else "z"
    level = table.attrs.get("level")
    interval = "confidence intervals" if level is None else f"{level_label(level)} confidence intervals"
    return f"Coefficients, with Wald {test} tests and {interval} (lower, upper):"


@dataclass(frozen=True)
class Summary:
    """A printable summary. ``str()`` gives the text, ``_repr_html_`` the notebook table.

    Attributes
    ----------
    header : list of header lines.
    coefficients : DataFrame of estimates, std errors, statistics, p-values and the interval
        columns ``lower``, ``upper``; its ``attrs["level"]`` is their level, printed in the
        line above the table (``"... 95% confidence intervals (lower, upper):"``).
    footer : list of footer lines.
    """

    header: tuple[str, ...]
    coefficients: pd.DataFrame
    footer: tuple[str, ...]

    @classmethod
    def from_fit(cls, fit, level: float = 0.95) -> Summary:
        """Build the summary of a :class:`~neuralglm.results.result.FitResult`."""
        info = fit.info
        if info.solver == "closed_form":
            solver = "closed form (least squares)"
        else:
            solver = f"{info.solver.upper()}, {info.n_iter} iterations, {'converged' if info.converged else 'NOT converged'}"
        title = "Linear model" if fit._is_linear_model else "Generalized linear model"
        header = [f"{title} · {fit.family}(link={fit.link}) · {solver}"]
        formula_line = f"Formula: {fit.formula}" if fit.formula else "Design: arrays"
        if fit.design.offset_source.any:
            formula_line += f"   Offset: {fit.design.offset_source.describe()}"
        header.append(formula_line)
        dispersion = {
            "fixed": f"{fit.dispersion:g} (fixed)",
            "pearson": f"{fit.dispersion:.6g} (Pearson)",
            "user": f"{fit.dispersion:g} (given)",
        }[fit.dispersion_method]
        header.append(
            f"Observations: {format_count(fit.n_obs)}   Df residual: {format_count(fit.df_resid)}   Dispersion: {dispersion}   Covariance: {fit.cov_type}"
        )
        if info.status.name not in ("CONVERGED", "CLOSED_FORM"):
            header.append(f"Warning: {info.message}")
        table = fit.coef_table(level)
        footer = []
        if fit._is_linear_model:
            sigma = np.sqrt(fit.dispersion)
            footer.append(f"Residual standard error: {sigma:.6g} on {format_count(fit.df_resid)} df")
            f_stat = fit.f_statistic
            if f_stat is not None:
                p = stats.f.sf(f_stat[0], f_stat[1], f_stat[2])
                footer.append(
                    f"R²: {fit.r_squared:.4f} · Adjusted R²: {fit.adj_r_squared:.4f} · "
                    f"F: {f_stat[0]:.4g} on {format_count(f_stat[1])} and {format_count(f_stat[2])} df, p {format_p_value(p)}"
                )
        footer.append(
            f"Deviance {fit.deviance:,.6g} on {format_count(fit.df_resid)} df · "
            f"Null deviance {fit.null_deviance:,.6g} on {format_count(fit.df_null)} df"
        )
        footer.append(f"Log-likelihood {_or_na(fit.loglik)} · AIC {_or_na(fit.aic)} · BIC {_or_na(fit.bic)}")
        footer += family_params_lines(fit.family_params)
        footer += balance_lines(fit)
        return cls(tuple(header), table, tuple(footer))

    def _table_text(self) -> str:
        table = self.coefficients
        shown = pd.DataFrame(index=table.index)
        statistic = table.columns[2]
        shown["estimate"] = table["estimate"].map(lambda v: f"{v:.6g}")
        shown["std_error"] = table["std_error"].map(lambda v: f"{v:.4g}")
        shown[statistic] = table[statistic].map(lambda v: f"{v:.3f}")
        shown["p_value"] = table["p_value"].map(format_p_value)
        for name in INTERVAL_COLUMNS:
            shown[name] = table[name].map(lambda v: f"{v:.5g}")
        shown["signif"] = table["p_value"].map(_stars)
        return shown.to_string()

    def __str__(self) -> str:
        lines = [
            *list(self.header),
            "",
            interval_title(self.coefficients),
            self._table_text(),
            "---",
            "Signif. codes: 0 '***' 0.001 '**' 0.01 '*' 0.05 '.' 0.1 ' ' 1",
            "",
        ]
        lines += list(self.footer)
        return "\n".join(lines)

    def __repr__(self) -> str:
        return str(self)

    def _repr_html_(self) -> str:
        table = self.coefficients.to_html(float_format=lambda v: f"{v:.6g}", classes="neuralglm-summary")
        title = f"<div>{html.escape(interval_title(self.coefficients))}</div>"
        return html_summary(self.header, [title, table], self.footer)


def html_summary(header, body: list[str], footer) -> str:
    """A notebook summary: escaped header lines, the HTML body parts, escaped footer lines."""
    head = "".join(f"<div>{html.escape(line)}</div>" for line in header)
    foot = "".join(f"<div>{html.escape(line)}</div>" for line in footer)
    return f"<div class='neuralglm'>{head}{''.join(body)}{foot}</div>"


def _or_na(value: float) -> str:
    """A likelihood statistic, or ``NA`` as R prints it where there is none (quasi families, Tweedie)."""
    return "NA" if np.isnan(value) else f"{value:,.6g}"


def _stars(p: float) -> str:
    if not np.isfinite(p):
        return ""
    for threshold, mark in ((0.001, "***"), (0.01, "**"), (0.05, "*"), (0.1, ".")):
        if p < threshold:
            return mark
    return ""
