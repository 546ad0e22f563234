"""The HTML report: its content against the fits, one file with nothing to fetch, and opened in headless Chromium.

The browser tests skip, saying why, where no Chromium is installed (.ci/run installs Debian's
``chromium`` when it runs as root). Each browser check is first shown to fire on a page that
does break the rule (an external image, a console error), so that a silent browser cannot pass them.
"""

from __future__ import annotations

import base64
import io
import json
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import matplotlib.image
import numpy as np
import pytest

import neuralglm as ng
from neuralglm.cli import main
from neuralglm.errors import SpecificationError

CHROMIUM = next((path for name in ("chromium", "chromium-browser", "google-chrome") if (path := shutil.which(name))), None)
needs_browser = pytest.mark.skipif(
    CHROMIUM is None, reason="headless Chromium is not installed (apt-get install chromium; .ci/run installs it when run as root)"
)
FORMULA = "claims ~ C(district) + group + age"


class _Page(HTMLParser):
    """Headings, tables (rows of cell texts), and every src/href of an HTML page."""

    def __init__(self, text: str):
        super().__init__()
        self.headings: list[str] = []
        self.tables: dict[str, list[list[str]]] = {}
        self.links: list[str] = []
        self.images: list[str] = []
        self.tags: list[str] = []
        self._text: list[str] | None = None
        self._table: str | None = None
        self._row: list[str] | None = None
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        self.tags.append(tag)
        self.links += [value or "" for key, value in attrs if key in ("src", "href")]
        if tag == "img":
            self.images.append(attributes.get("src") or "")
        if tag in ("h1", "h2", "h3", "td", "th"):
            self._text = []
        if tag == "table":
            self._table = attributes.get("id") or f"table-{len(self.tables)}"
            self.tables[self._table] = []
        if tag == "tr":
            self._row = []

    def handle_data(self, data):
        if self._text is not None:
            self._text.append(data)

    def handle_endtag(self, tag):
        text = "".join(self._text or []).strip()
        if tag in ("h1", "h2", "h3"):
            self.headings.append(text)
            self._text = None
        elif tag in ("td", "th") and self._row is not None:
            self._row.append(text)
            self._text = None
        elif tag == "tr" and self._table is not None and self._row is not None:
            self.tables[self._table].append(self._row)
            self._row = None


@pytest.fixture(scope="module")
def claims():
    return ng.datasets.load_insurance()


@pytest.fixture(scope="module")
def fits(claims):
    return {
        "GLM": ng.glm(FORMULA, claims, family="poisson", exposure="holders"),
        "age only": ng.glm("claims ~ age", claims, family="poisson", exposure="holders"),
    }


@pytest.fixture(scope="module")
def comparison(tmp_path_factory, fits, claims) -> Path:
    path = tmp_path_factory.mktemp("report") / "comparison.html"
    return fits["GLM"].report(claims, path, compare={"age only": fits["age only"]}, folds=3)


@pytest.fixture(scope="module")
def network_report(tmp_path_factory, claims):
    net = ng.fit(
        FORMULA, claims, family="poisson", exposure="holders", hidden=(2,), activation="tanh", l2=0.1, solver="lbfgs", epochs=3000, seed=0
    )
    return net, ng.report(net, claims, tmp_path_factory.mktemp("report") / "network.html", top=2)


def test_report_holds_every_section_and_the_fits_numbers(comparison, fits):
    page = _Page(comparison.read_text(encoding="utf-8"))
    for part in ("Summary", "Coefficients", "Fit statistics", "Diagnostics", "Calibration", "Effects and importance"):
        assert f"GLM: {part}" in page.headings and f"age only: {part}" in page.headings
    assert "Comparison of the models" in page.headings and "3-fold cross-validation" in page.headings
    rows = page.tables["glm-coefficients-table"]
    assert rows[0] == ["term", "estimate", "std_error", "z_value", "p_value", "lower", "upper"]
    printed = {row[0]: (float(row[1]), float(row[2])) for row in rows[1:]}
    coef, se = fits["GLM"].coef, fits["GLM"].std_errors
    assert list(printed) == coef.index.tolist()
    for name, (estimate, std_error) in printed.items():  # equal to six significant digits, as printed
        assert estimate == float(f"{coef[name]:.6g}") and std_error == float(f"{se[name]:.6g}")
    statistics = dict(page.tables["glm-statistics-table"][1:])
    assert float(statistics["deviance (training)"]) == float(f"{fits['GLM'].deviance:.6g}")
    assert float(statistics["AIC"]) == float(f"{fits['GLM'].aic:.6g}")
    gini = ng.effects.gini(fits, None)
    compared = {row[0]: row for row in page.tables["comparison-table"][1:]}
    assert float(compared["GLM"][-1]) == float(f"{gini.loc['GLM', 'gini']:.6g}")
    cross_validated = ng.cross_validate(fits, ng.datasets.load_insurance(), folds=3, seed=0)
    cv_rows = {row[0]: row for row in page.tables["cross-validation-table"][1:]}
    assert float(cv_rows["age only"][1]) == float(f"{cross_validated.iloc[1, 0]:.4g}")


def test_report_is_one_small_file_that_fetches_nothing(comparison):
    text = comparison.read_text(encoding="utf-8")
    page = _Page(text)
    assert comparison.stat().st_size < 2_000_000
    assert not [link for link in page.links if not (link.startswith("data:image/png;base64,") or link.startswith("#"))]
    assert "script" not in page.tags and "link" not in page.tags and "iframe" not in page.tags
    assert "default-src 'none'" in text  # the policy blocks any fetch a later edit might add
    assert len(page.images) >= 12
    for source in page.images:  # every figure is a PNG that decodes
        image = matplotlib.image.imread(io.BytesIO(base64.b64decode(source.split(",", 1)[1])), format="png")
        assert image.shape[0] > 50 and image.shape[1] > 50


def test_network_report_shows_the_architecture(network_report):
    net, path = network_report
    page = _Page(path.read_text(encoding="utf-8"))
    assert "Architecture" in page.headings and "Coefficients" not in page.headings
    layers = {row[0]: row[1:] for row in page.tables["coefficients-table"][1:]}
    assert layers["hidden 1"] == ["2", "tanh"] and layers["input"][0] == str(net.scaling.n_in)
    assert f"{net.n_params} parameters" in path.read_text(encoding="utf-8")
    importance = page.tables["effects-importance"]
    assert len(importance) == 4 and {row[0] for row in importance[1:]} == {"district", "group", "age"}


def test_report_refuses_bad_arguments(fits, claims, tmp_path):
    with pytest.raises(SpecificationError, match="'folds' parameter of report"):
        ng.report(fits, claims, tmp_path / "r.html", folds=1)
    with pytest.raises(SpecificationError, match="must be a FitResult or NetworkResult"):
        ng.report({"x": object()}, claims, tmp_path / "r.html")
    with pytest.raises(SpecificationError, match=r"not a list: write e\.g\. ng\.report\(\{'GLM': glm"):
        ng.report(list(fits.values()), claims, tmp_path / "r.html")
    with pytest.raises(SpecificationError, match="existing folder"):
        ng.report(fits["GLM"], claims, tmp_path / "missing" / "r.html")


def test_cli_report_writes_the_page(tmp_path, fits, claims, capsys):
    model, data, out = tmp_path / "claims-glm.npz", tmp_path / "claims.csv", tmp_path / "cli.html"
    fits["GLM"].save(model)
    claims.to_csv(data, index=False)
    assert main(["report", str(model), str(data), "--out", str(out), "--top", "2"]) == 0
    assert "Wrote" in capsys.readouterr().out
    page = _Page(out.read_text(encoding="utf-8"))
    assert "Coefficients" in page.headings and page.headings[0].startswith("claims ~ C(district)")
    assert main(["report", str(model), "--out", str(out)]) == 1
    assert "at least one model file and then the data file" in capsys.readouterr().err


# ---- in a real browser -------------------------------------------------------------------------
def _chromium(page: Path, tmp_path: Path, *extra: str) -> tuple[str, str, list[str]]:
    """DOM after load, stderr (console messages), and the URLs the page itself requested (from Chromium's net log),
    with the network cut off: a proxy on a closed port and no name resolution."""
    net_log = tmp_path / f"{page.stem}-net.json"
    command = [
        str(CHROMIUM),
        "--headless",
        "--disable-gpu",
        "--no-sandbox",
        "--no-first-run",
        "--disable-background-networking",
        "--proxy-server=127.0.0.1:9",
        "--host-resolver-rules=MAP * ~NOTFOUND",
        f"--user-data-dir={tmp_path / 'profile'}",
        "--enable-logging=stderr",
        "--v=0",
        f"--log-net-log={net_log}",
        *extra,
        page.as_uri(),
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    events = json.loads(net_log.read_text(encoding="utf-8"))["events"] if net_log.exists() else []
    # Chromium's own background traffic (updates, accounts) has no file:// isolation key; the page's requests do.
    requested = [
        event["params"]["url"]
        for event in events
        if "url" in event.get("params", {}) and "file://" in str(event["params"].get("network_isolation_key", ""))
    ]
    return done.stdout, done.stderr, [url for url in requested if not url.startswith(("file:", "data:"))]


_COUNT_IMAGES = (
    "<script>addEventListener('load', () => { const images = [...document.images];"
    " document.body.dataset.images = images.length;"
    " document.body.dataset.decoded = images.filter(i => i.complete && i.naturalWidth > 0).length; });</script>"
)


def _instrumented(page: Path, tmp_path: Path) -> Path:
    """A copy that counts decoded images after load (the policy widened for this one inline script only)."""
    text = page.read_text(encoding="utf-8").replace("style-src 'unsafe-inline'", "style-src 'unsafe-inline'; script-src 'unsafe-inline'")
    copy = tmp_path / f"{page.stem}-counted.html"
    copy.write_text(text.replace("</body>", _COUNT_IMAGES + "</body>"), encoding="utf-8")
    return copy


@needs_browser
def test_the_browser_checks_catch_a_page_that_breaks_them(tmp_path):
    bad = tmp_path / "bad.html"
    bad.write_text(
        '<!DOCTYPE html><html><body><h1>x</h1><img src="http://example.invalid/a.png">'
        '<img src="data:image/png;base64,AAAA"><script>console.error("broken page")</script></body></html>',
        encoding="utf-8",
    )
    _, stderr, requested = _chromium(bad, tmp_path, "--dump-dom")
    assert requested == ["http://example.invalid/a.png"]
    assert "CONSOLE" in stderr and "broken page" in stderr
    dom, _, _ = _chromium(_instrumented(bad, tmp_path), tmp_path, "--dump-dom")
    assert 'data-images="2"' in dom and 'data-decoded="0"' in dom


@needs_browser
def test_report_opens_in_chromium_offline(comparison, fits, tmp_path):
    dom, stderr, requested = _chromium(comparison, tmp_path, "--dump-dom")
    assert requested == []
    assert "CONSOLE" not in stderr, stderr[-2000:]  # no console errors, no refused loads
    page = _Page(dom)
    assert "GLM: Coefficients" in page.headings and "Comparison of the models" in page.headings
    printed = {row[0]: float(row[1]) for row in page.tables["glm-coefficients-table"][1:]}
    assert printed["age.L"] == float(f"{fits['GLM'].coef['age.L']:.6g}")
    counted, _, requested = _chromium(_instrumented(comparison, tmp_path), tmp_path, "--dump-dom")
    n_images = len(_Page(comparison.read_text(encoding="utf-8")).images)
    assert requested == [] and f'data-images="{n_images}"' in counted and f'data-decoded="{n_images}"' in counted


@needs_browser
def test_report_screenshot_is_not_blank(network_report, tmp_path):
    _, path = network_report
    shot = tmp_path / "shot.png"
    _chromium(path, tmp_path, f"--screenshot={shot}", "--window-size=1100,1400", "--hide-scrollbars")
    pixels = matplotlib.image.imread(shot)[..., :3]
    assert pixels.shape[:2] == (1400, 1100)
    not_white = np.mean(pixels.min(axis=-1) < 0.9)
    assert 0.05 < not_white < 0.95 and pixels.std() > 0.05
    # The header's colour (the palette's blue) is on the page: the CSS was applied.
    assert np.any(np.all(np.abs(pixels[:60].reshape(-1, 3) - np.array([0x00, 0x72, 0xB2]) / 255) < 0.02, axis=1))
