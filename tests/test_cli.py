import json
import pathlib
import subprocess
import sys
import warnings
from io import StringIO

import numpy as np
import pandas as pd
import pytest

import mixmio
from mixmio.__main__ import COMMANDS, main, parse_k, run, sniff_sep

FORMULA = "Reaction ~ Days + (1 | Subject)"


@pytest.fixture(scope="module")
def sleep():
    return mixmio.datasets.load("sleepstudy")


def test_design_only_describes_the_design():
    out = run(["fit", "sleepstudy", "Reaction ~ Days + (Days | Subject)", "--design-only"])
    assert "1|Subject, Days|Subject" in out and "Observations: 180" in out


def test_fit_prints_summary(tmp_path, sleep):
    path = tmp_path / "d.csv"
    sleep.to_csv(path, index=False)
    out = run(["fit", str(path), FORMULA, "-k", "3"])
    assert "Random effects" in out and "status: optimal" in out


def test_runtime_errors_exit_1_with_message(capsys):
    assert main(["fit", "sleepstudy", "Reaction ~ Dayz + (1 | Subject)", "-k", "2"]) == 1
    assert "Dayz" in capsys.readouterr().err


def test_missing_file_exits_1(capsys, tmp_path):
    assert main(["fit", str(tmp_path / "nope.csv"), FORMULA, "-k", "2"]) == 1
    assert "nope.csv" in capsys.readouterr().err


@pytest.mark.parametrize("argv", [["fit", "sleepstudy", FORMULA, "-k", "1|Subject=x"],
                                  ["path", "sleepstudy", FORMULA, "-k", "0,a"],
                                  ["fit", "sleepstudy", FORMULA, "--format", "xml"],
                                  ["nosuchcommand"]])
def test_usage_errors_exit_2(argv, capsys):
    try:
        code = main(argv)
    except SystemExit as exc:  # argparse's own usage errors
        code = exc.code
    assert code == 2
    assert "error" in capsys.readouterr().err


def test_module_entry_point_and_version():
    out = subprocess.run([sys.executable, "-m", "mixmio", "fit", "sleepstudy",
                          "Reaction ~ Days + (1 | Subject", "--design-only"],
                         capture_output=True, text=True)
    assert out.returncode == 1
    assert "never closed" in out.stderr and "^" in out.stderr
    ver = subprocess.run([sys.executable, "-m", "mixmio", "--version"], capture_output=True,
                         text=True)
    assert ver.returncode == 0 and ver.stdout.strip() == f"mixmio {mixmio.__version__}"


def test_parse_k_forms():
    assert parse_k("4") == 4
    assert parse_k("cv") == "cv"
    assert parse_k("1|g=5, x|g=2") == {"1|g": 5, "x|g": 2}
    assert parse_k("1|g=3:0") == {"1|g": (3, 0)}
    assert parse_k("0, 1,5", many=True) == [0, 1, 5]


def test_caps_per_column_match_the_api(sleep):
    f = "Reaction ~ Days + (Days || Subject)"
    out = json.loads(run(["fit", "sleepstudy", f, "-k", "1|Subject=2,Days|Subject=3",
                          "--format", "json"]))
    fit = mixmio.mio_lmer(f, sleep, k={"1|Subject": 2, "Days|Subject": 3}, random_state=0)
    assert out["status"] == fit.status
    assert out["objective"] == pytest.approx(fit.objective, rel=1e-9)


def test_sniff_sep():
    assert sniff_sep("a.tsv", "y,x\n") == "\t"
    assert sniff_sep("a.csv", "y,x,g") == ","
    assert sniff_sep("-", "y;x;g\n1;2;3") == ";"
    assert sniff_sep("data.txt", "y|x") == "|"
    assert sniff_sep("-", "y") == ","


def test_stdin_with_sniffed_tab(sleep):
    text = sleep.to_csv(sep="\t", index=False)
    out = run(["fit", "-", FORMULA, "-k", "3"], stdin=StringIO(text))
    direct = run(["fit", "sleepstudy", FORMULA, "-k", "3"])
    assert out.splitlines()[5:] == direct.splitlines()[5:]  # same tables (time line differs)


def test_stdin_through_the_entry_point(sleep):
    text = sleep.to_csv(sep=";", index=False)
    out = subprocess.run([sys.executable, "-m", "mixmio", "fit", "-", FORMULA, "-k", "2",
                          "--format", "json"], input=text, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["status"] == "optimal"


def test_wrong_separator_gives_a_hint(tmp_path, sleep, capsys):
    path = tmp_path / "d.csv"
    sleep.to_csv(path, sep=";", index=False)
    assert main(["fit", str(path), FORMULA, "-k", "2", "--sep", ","]) == 1
    err = capsys.readouterr().err
    assert "not in the data" in err and "--sep ';'" in err


def test_formats(sleep):
    argv = ["fit", "sleepstudy", FORMULA, "-k", "3"]
    fit = mixmio.mio_lmer(FORMULA, sleep, k=3, random_state=0)
    tables = fit.summary().tables
    js = json.loads(run(argv + ["--format", "json"]))
    assert js["status"] == "optimal" and js["nobs"] == 180
    assert set(js["tables"]) == set(tables)
    fixed = pd.DataFrame(**{k: js["tables"]["fixed"][k] for k in ("data", "index", "columns")})
    pd.testing.assert_frame_equal(fixed, tables["fixed"], check_dtype=False, atol=1e-8)
    csv = pd.read_csv(StringIO(run(argv + ["--format", "csv"])))
    assert set(csv["table"]) == set(tables)
    assert (csv["table"] == "fixed").sum() == len(tables["fixed"])
    md = run(argv + ["--format", "markdown"])
    want = fit.summary().to_markdown()
    assert "| " in md and "Random effects" in md
    drop_time = lambda text: [ln for ln in text.splitlines() if "time:" not in ln]  # noqa: E731
    assert drop_time(md) == drop_time(want)


@pytest.fixture(scope="module")
def binary_csv(tmp_path_factory):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 3))
    y = (X[:, 0] - X[:, 1] + rng.logistic(size=200) > 0).astype(int)
    path = tmp_path_factory.mktemp("cli") / "binary.csv"
    pd.DataFrame(X, columns=["a", "b", "c"]).assign(y=y).to_csv(path, index=False)
    return str(path)


def test_lm_glm_clr_subcommands_match_the_api(binary_csv, sleep):
    lm = json.loads(run(["lm", "sleepstudy", "Reaction ~ Days", "-k", "1", "--format", "json"]))
    assert lm["objective"] == pytest.approx(
        mixmio.mio_lm("Reaction ~ Days", sleep, k=1).objective, rel=1e-9)
    glm = json.loads(run(["glm", binary_csv, "y ~ a + b + c", "-k", "2", "--format", "json"]))
    data = pd.read_csv(binary_csv)
    assert glm["objective"] == pytest.approx(
        mixmio.mio_glm("y ~ a + b + c", data, k=2).objective, rel=1e-9)
    assert glm["status"] == "optimal"
    two = data.head(24).assign(r=lambda d: np.where(d.index % 2 == 0, 1.0, -1.0) * d["a"] * 3
                               + 0.01 * d["b"])
    path = pathlib.Path(binary_csv).with_name("two.csv")
    two.to_csv(path, index=False)
    clr = json.loads(run(["clr", str(path), "r ~ a", "-K", "2", "--format", "json"]))
    assert clr["objective"] == pytest.approx(
        mixmio.mio_clr("r ~ a", two, 2, random_state=0).objective, rel=1e-6)


def test_path_and_cv_tables():
    out = run(["path", "sleepstudy", FORMULA, "-k", "0,2,4", "--format", "csv"])
    table = pd.read_csv(StringIO(out))
    assert list(table["k"]) == [0, 2, 4] and set(table["status"]) == {"optimal"}
    assert table["objective"].is_monotonic_decreasing
    out = run(["cv", "sleepstudy", FORMULA, "-k", "0,2,4", "--folds", "3"])
    assert "k_best" in out and "cv_lmer (blocked, 3 folds" in out


def test_warnings_name_the_command_not_runpy(monkeypatch, capsys):
    from mixmio.solvers.solution import SearchLimitWarning

    def warns(args, data):
        warnings.warn("time limit reached with relative gap 1e-2", SearchLimitWarning,
                      stacklevel=2)
        return "done"

    monkeypatch.setitem(COMMANDS, "lm", warns)
    assert main(["lm", "sleepstudy", "Reaction ~ Days"]) == 0
    err = capsys.readouterr().err
    assert err.strip() == "mixmio: SearchLimitWarning: time limit reached with relative gap 1e-2"
