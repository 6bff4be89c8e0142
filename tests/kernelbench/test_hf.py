"""The Hugging Face loader, against local rows only (never the network)."""

from __future__ import annotations

import os
import socket
import sys
import types
from pathlib import Path
from typing import Any

import pytest

from evokernel.errors import UserError
from kernelbench import hf
from kernelbench.hf import DATASET, load_hf, problems_from_rows
from kernelbench.loader import load_suite


def _rows(kb_root: Path) -> dict[str, list[dict[str, Any]]]:
    """The dataset's shape: one split per level, columns code, level, name, problem_id."""
    relu = (kb_root / "level1" / "19_ReLU.py").read_text()
    rowsum = (kb_root / "level1" / "10_RowSum.py").read_text()
    fused = (kb_root / "level2" / "3_Linear_Sigmoid_Scale.py").read_text()
    return {
        "level_1": [
            {"code": relu, "level": 1, "name": "19_ReLU", "problem_id": 19},
            {"code": rowsum, "level": 1, "name": "RowSum.py", "problem_id": 10},
        ],
        "level_2": [{"code": fused, "level": 2, "name": "3_Linear_Sigmoid_Scale.py", "problem_id": 3}],
    }


def test_rows_become_problems_with_public_ids(kb_root: Path) -> None:
    problems = problems_from_rows(_rows(kb_root))
    assert [(p.id, p.level, p.category) for p in problems] == [
        ("level1/10_RowSum", 1, "reduction"),
        ("level1/19_ReLU", 1, "activation"),
        ("level2/3_Linear_Sigmoid_Scale", 2, "fusion"),
    ]
    # the same ids as a local checkout of the public layout
    local = {p.id: p.hash for p in load_suite(kb_root)}
    assert all(local[p.id] == p.hash for p in problems)
    assert all(p.path is None for p in problems)


def test_level_and_filter(kb_root: Path) -> None:
    assert [p.id for p in problems_from_rows(_rows(kb_root), level=2)] == ["level2/3_Linear_Sigmoid_Scale"]
    assert [p.id for p in problems_from_rows(_rows(kb_root), filter="ReLU")] == ["level1/19_ReLU"]


def test_columnar_dict_and_missing_columns(kb_root: Path) -> None:
    rows = _rows(kb_root)["level_1"]
    columns = {key: [r[key] for r in rows] for key in ("code", "level", "name", "problem_id")}
    assert len(problems_from_rows(columns)) == 2
    with pytest.raises(UserError, match="missing code"):
        problems_from_rows([{"level": 1, "name": "x", "problem_id": 1}])


def test_load_hf_through_a_patched_datasets_module(kb_root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[str, Any]] = []

    def load_dataset(name: str, revision: str | None = None) -> dict:
        calls.append((name, revision))
        return _rows(kb_root)

    monkeypatch.setitem(sys.modules, "datasets", types.SimpleNamespace(load_dataset=load_dataset))
    problems = load_suite("hf", level=1)
    assert [p.id for p in problems] == ["level1/10_RowSum", "level1/19_ReLU"]
    assert calls == [(DATASET, None)]
    load_hf("me/OtherBench", revision="abc")
    assert calls[-1] == ("me/OtherBench", "abc")
    assert load_suite("hf:me/OtherBench", filter="Sigmoid")[0].id == "level2/3_Linear_Sigmoid_Scale"


def test_network_failure_is_a_user_error(monkeypatch: pytest.MonkeyPatch) -> None:
    def offline(name: str, revision: str | None = None) -> None:
        raise ConnectionError("Couldn't reach huggingface.co")

    monkeypatch.setitem(sys.modules, "datasets", types.SimpleNamespace(load_dataset=offline))
    with pytest.raises(UserError, match="cannot load the Hugging Face dataset .*--suite PATH"):
        load_suite("hf")


def test_missing_datasets_package_says_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "datasets", None)  # import datasets -> ImportError
    with pytest.raises(UserError, match=r"pip install evokernel\[hf\]"):
        load_hf()


def test_a_real_datasets_dataset(kb_root: Path) -> None:
    datasets = pytest.importorskip("datasets")
    splits = {k: datasets.Dataset.from_list(v) for k, v in _rows(kb_root).items()}
    problems = load_hf(dataset=datasets.DatasetDict(splits))
    assert [p.id for p in problems][-1] == "level2/3_Linear_Sigmoid_Scale"
    flat = datasets.Dataset.from_dict(
        {k: [r[k] for r in _rows(kb_root)["level_1"]] for k in ("code", "level", "name", "problem_id")}
    )
    assert len(load_hf(dataset=flat)) == 2


def _fresh_process(monkeypatch: pytest.MonkeyPatch) -> None:
    """As a fresh CLI process: neither library imported yet, no offline mode chosen, no proxy."""
    for module in ("datasets", "huggingface_hub"):
        monkeypatch.delitem(sys.modules, module, raising=False)
    for var in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.setenv(var, "")  # recorded first, so the teardown restores whatever was there
        monkeypatch.delenv(var)


def _datasets_seeing_the_mode(seen: list[str | None], result: Any = None) -> Any:
    def load_dataset(name: str, revision: str | None = None) -> Any:
        seen.append(os.environ.get("HF_HUB_OFFLINE"))
        if result is None:
            raise ConnectionError("Couldn't reach 'ScalingIntelligence/KernelBench' on the Hub (OfflineModeIsEnabled)")
        return result

    return lambda: types.SimpleNamespace(load_dataset=load_dataset)


def test_an_unreachable_hub_means_the_local_cache_at_once(kb_root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _fresh_process(monkeypatch)
    monkeypatch.setattr(hf, "_hub_reachable", lambda timeout_s=hf.PROBE_TIMEOUT_S: False)
    seen: list[str | None] = []
    monkeypatch.setattr(hf, "_import_datasets", _datasets_seeing_the_mode(seen))
    with pytest.raises(UserError, match="cannot be reached and the dataset is not in the local Hugging Face cache"):
        load_hf()
    assert seen == ["1"]  # offline mode was on before the library was imported: no retries
    monkeypatch.delenv("HF_HUB_OFFLINE")
    monkeypatch.setattr(hf, "_import_datasets", _datasets_seeing_the_mode(seen, _rows(kb_root)))
    assert len(load_hf(level=1)) == 2 and seen[-1] == "1"  # a cached dataset still loads


@pytest.mark.parametrize("case", ["reachable", "user-mode", "proxy", "imported"])
def test_the_mode_is_left_alone(case: str, kb_root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _fresh_process(monkeypatch)
    probes: list[float] = []
    monkeypatch.setattr(hf, "_hub_reachable", lambda timeout_s=hf.PROBE_TIMEOUT_S: probes.append(timeout_s) or True)
    if case == "user-mode":
        monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    elif case == "proxy":
        monkeypatch.setenv("HTTPS_PROXY", "http://proxy.invalid:3128")
    elif case == "imported":
        monkeypatch.setitem(sys.modules, "huggingface_hub", types.SimpleNamespace())
    seen: list[str | None] = []
    monkeypatch.setattr(hf, "_import_datasets", _datasets_seeing_the_mode(seen, _rows(kb_root)))
    assert len(load_hf()) == 3
    assert seen == (["0"] if case == "user-mode" else [None])
    assert probes == ([hf.PROBE_TIMEOUT_S] if case == "reachable" else [])


def test_the_probe_connects_to_hf_endpoint(monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as server:  # a local listener stands in for the hub: the test never leaves the machine
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{port}")
        assert hf._hub_reachable(1.0)
    assert not hf._hub_reachable(1.0)  # the port is closed now
