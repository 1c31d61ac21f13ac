"""The GPU check script's code paths, run on the CPU with tiny settings (the timings themselves are not checked)."""

import subprocess
import sys

from benchmarks.gpu_check import ddp_matches_single_process, main


def test_gpu_check_runs_on_the_cpu_and_writes_its_report(tmp_path):
    out = tmp_path / "report.md"
    settings = ["--device", "cpu", "--architectures", "paper_mnist", "--modes", "fp32", "--steps", "3", "--warmup", "2"]
    settings += ["--seconds-per-run", "1", "--examples", "200", "--out", str(out)]
    assert main(settings) == 0
    report = out.read_text()
    for loss in ("gme_loss", "mds1_loss", "mds2_loss", "gme_heldout"):
        row = next(line for line in report.splitlines() if line.startswith(f"| {loss}"))
        assert row.endswith("| yes |"), row
    assert "| paper_mnist | encoder | 100 | 0.32 M | 4.1 | fp32 |" in report
    assert "| paper_mnist | decoder | 100 | 0.83 M | 26.4 | fp32 |" in report
    assert "## Verdict: passed" in report


def test_gpu_check_marks_what_the_budget_left_out(tmp_path):
    out = tmp_path / "report.md"
    assert main(["--device", "cpu", "--architectures", "paper_mnist", "--budget-s", "0", "--out", str(out)]) == 0
    assert "not run (time budget)" in out.read_text()


def test_ddp_step_check_agrees_on_two_gloo_processes():
    assert ddp_matches_single_process("mlp", [1, 8, 8], latent_dim=4, batch=16, backend="gloo", device="cpu") < 0.05


def test_the_gpu_check_needs_only_torch_and_the_core():
    probe = "import sys, benchmarks.gpu_check; print(sorted(m for m in ('pandas', 'kedro', 'mlflow') if m in sys.modules))"
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]", "a bare GPU machine has none of these"
