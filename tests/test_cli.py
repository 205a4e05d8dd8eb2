import subprocess
import sys

from mixmio.__main__ import main, run


def test_design_only_describes_the_design():
    out = run(["fit", "sleepstudy", "Reaction ~ Days + (Days | Subject)", "--design-only"])
    assert "1|Subject, Days|Subject" in out and "Observations: 180" in out


def test_fit_prints_summary(tmp_path):
    from mixmio.datasets import load

    path = tmp_path / "d.csv"
    load("sleepstudy").to_csv(path, index=False)
    out = run(["fit", str(path), "Reaction ~ Days + (1 | Subject)", "-k", "3"])
    assert "Random effects" in out and "status: optimal" in out


def test_errors_exit_2_with_message(capsys):
    assert main(["fit", "sleepstudy", "Reaction ~ Dayz + (1 | Subject)", "-k", "2"]) == 2
    assert "Dayz" in capsys.readouterr().err


def test_module_entry_point():
    out = subprocess.run([sys.executable, "-m", "mixmio", "fit", "sleepstudy",
                          "Reaction ~ Days + (1 | Subject", "--design-only"],
                         capture_output=True, text=True)
    assert out.returncode == 2
    assert "never closed" in out.stderr and "^" in out.stderr
