"""`evokernel synthesize` checks its inputs before the agent starts: one line naming what to fix, exit 2."""

from __future__ import annotations

from pathlib import Path

import pytest

from evokernel.cli import main

DATA = Path(__file__).parent / "data"


def synthesize(tmp_path: Path, *args: str) -> int:
    return main(["synthesize", str(DATA / "relu_problem.py"), "--memory", str(tmp_path / "m.sqlite"), *args])


@pytest.mark.parametrize(
    "where, expected",
    [("dir", "is a directory"), ("under-a-file", "cannot write there"), ("proc", "cannot write there")],
)
def test_a_bad_out_path_fails_before_the_agent_starts(tmp_path: Path, capsys: pytest.CaptureFixture,
                                                       where: str, expected: str) -> None:
    if where == "dir":
        out = tmp_path / "outdir"
        out.mkdir()
    elif where == "under-a-file":
        (tmp_path / "relu.py").write_text("x = 1\n")
        out = tmp_path / "relu.py" / "k.py"
    else:
        if not Path("/proc/self").exists():
            pytest.skip("needs /proc")
        out = Path("/proc/evokernel-test/k.py")
    rc = synthesize(tmp_path, "--out", str(out))
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1
    assert err[0].startswith(f"evokernel: error: --out {out}:") and expected in err[0]
    assert not (tmp_path / "m.sqlite").exists()  # nothing ran: no memory was even opened


def test_the_out_check_leaves_no_file_behind(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from evokernel.agent.runrecord import check_out_path

    out = tmp_path / "new" / "k.py"
    check_out_path(out)
    assert out.parent.is_dir() and list(out.parent.iterdir()) == []
