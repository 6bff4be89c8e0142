"""HTML reports render from recorded runs, self-contained, with real PNG plots."""

from __future__ import annotations

import base64
import re
import struct
from pathlib import Path

import pytest

from evokernel.errors import UserError
from kernelbench.metrics import NOT_MEASURED_TEXT
from kernelbench.report import render_html, write_report

_IMG = re.compile(r'<img alt="([^"]*)" src="data:image/png;base64,([A-Za-z0-9+/=]+)">')


def _pngs(text: str) -> dict[str, tuple[int, int]]:
    """alt text -> (width, height) of every embedded image, checking each is a real PNG."""
    out = {}
    for alt, data in _IMG.findall(text):
        raw = base64.b64decode(data, validate=True)
        assert raw[:8] == b"\x89PNG\r\n\x1a\n", alt
        assert raw[12:16] == b"IHDR"
        width, height = struct.unpack(">II", raw[16:24])
        assert 200 <= width <= 3000 and 150 <= height <= 3000, (alt, width, height)
        assert len(raw) > 5000, f"{alt}: a {len(raw)}-byte PNG is not a plot"
        out[alt] = (width, height)
    return out


def _self_contained(text: str) -> None:
    assert text.startswith("<!DOCTYPE html>")
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", text)
    assert "<script" not in text and "<link" not in text


def test_gpu_solutions_report(runs_dir: Path, tmp_path: Path) -> None:
    path = write_report([runs_dir / "gpu_solutions"], tmp_path / "out" / "report.html")
    text = path.read_text()
    _self_contained(text)
    images = _pngs(text)
    assert set(images) == {
        "correctness and fast_p by level",
        "correctness and fast_p by category",
        "speedup of correct kernels",
    }
    for fragment in (
        "level2/3_Linear_Tanh_RowSum",
        "missing",
        "NVIDIA H100",
        "fast_1.5",
        "1.44x",
        "50.0%",
        "NameError: name &#x27;tl&#x27; is not defined",
    ):
        assert fragment in text
    assert NOT_MEASURED_TEXT not in text


def test_cpu_report_says_speed_was_not_measured(runs_dir: Path) -> None:
    text = render_html([runs_dir / "cpu_solutions"])
    _self_contained(text)
    assert NOT_MEASURED_TEXT in text
    assert set(_pngs(text)) == {"compile rate and correctness by level", "compile rate and correctness by category"}
    assert not re.search(r"\d\.\d\dx", text)  # no speedup numbers anywhere
    assert "level3/1_MLP" in text


def test_agent_report_plots_rounds(runs_dir: Path) -> None:
    text = render_html([runs_dir / "agent"])
    images = _pngs(text)
    assert "correctness over rounds" in images
    assert "20 attempts, 8 feasible" in text
    assert "within-task" in text and "2.08x" in text  # geometric mean of 2.5, 3.6 and 1.0


def test_comparison(runs_dir: Path) -> None:
    text = render_html([runs_dir / "gpu_solutions", runs_dir / "gpu_solutions_b"])
    _self_contained(text)
    images = _pngs(text)
    assert {"correct and fast_1 by level", "per-problem speedup comparison"} <= set(images)
    assert "gpu_solutions_b" in text
    assert all(w in text for w in ("fixed", "broken", "faster", "status changed"))
    assert "6 of 6 problems differ" in text
    # a GPU run against a CPU run: the CPU side prints no speed
    mixed = render_html([runs_dir / "gpu_solutions", runs_dir / "cpu_solutions"])
    assert NOT_MEASURED_TEXT in mixed and "only in A" in mixed and "only in B" in mixed


def test_three_runs_are_refused(runs_dir: Path) -> None:
    with pytest.raises(UserError, match="one run, or two"):
        render_html([runs_dir / "agent"] * 3)


def test_agent_report_header_shows_the_nested_agent_settings(tmp_path: Path) -> None:
    from evokernel.agent.settings import AgentSettings
    from kernelbench.records import RunWriter, make_header

    settings = AgentSettings()
    settings.verify.backend, settings.verify.trials, settings.retrieval.mode = "cpu", 2, "similarity"
    config = {"settings": settings.to_dict(), "proposer": "offline", "backend": "cpu"}  # Agent.run_config()
    header = make_header("agent", settings=config, suite="builtin", device="cpu", backend="cpu", problems=0,
                         extra={"rounds": 30})
    with RunWriter(tmp_path / "run", header):
        pass
    text = render_html([tmp_path / "run"])
    row = re.search(r"<th class='l'>settings</th><td>([^<]*)</td>", text).group(1)
    for shown in ("proposer=offline", "retrieval=similarity", "policy=strict", "trials=2", "seed=0", "workers=2"):
        assert shown in row, row


def test_a_header_whose_settings_are_not_an_object_is_one_line_on_the_command_line(tmp_path: Path, capsys) -> None:
    import json

    from evokernel.cli import main
    from kernelbench.records import make_header

    run = tmp_path / "run"
    run.mkdir()
    header = make_header("solutions", settings={"backend": "cpu"}, suite="builtin", device="cpu", backend="cpu",
                         problems=1)  # fmt: skip
    header["settings"] = ["backend", "cpu"]  # edited by hand
    (run / "results.jsonl").write_text(json.dumps(header) + "\n")
    assert main(["report", str(run), "-o", str(tmp_path / "r.html")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "results.jsonl:1: " in err and "'settings' must be a JSON object" in err, err
    assert not (tmp_path / "r.html").exists()
