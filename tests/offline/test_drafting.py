"""Choosing configurations: reuse of retrieved experiences, sampling without memory, refinement."""

from __future__ import annotations

import pytest

from evokernel.agent.offline import space as S
from evokernel.agent.offline.drafting import draft_config, refine_config
from evokernel.agent.types import ProposalRequest
from evokernel.memory.records import Item, Retrieved


def _item(item_id: int, config: dict, *, feasible: bool = True, q: float = 0.0, latency: float | None = None) -> Item:
    return Item(
        kind="experience", task_id=f"t{item_id}", task_name=f"t{item_id}", backend="cpu", stage="draft", code="",
        lesson="", outcome={}, reward=1.0 if feasible else -1.0, parent_id=None, run_id=None, feasible=feasible,
        latency_ms=latency, meta={"offline": {"families": list(config), "config": config}}, id=item_id, q_draft=q,
    )  # fmt: skip


def _request(context=(), attempt: int = 0, seed: int = 0, **kw) -> ProposalRequest:
    return ProposalRequest(task_id="task", task_name="task", task_source="", backend=kw.pop("backend", "cuda"),
                           stage=kw.pop("stage", "draft"), attempt=attempt, seed=seed, context=list(context), **kw)  # fmt: skip


SAFE = {"mode": "loop", "BLOCK_R": 256, "BLOCK_K": 2}
RISKY = {"mode": "one_pass", "BLOCK_R": 64, "BLOCK_K": 2}


def test_draft_reuses_the_best_valued_feasible_experience():
    ctx = [
        Retrieved(_item(1, {"softmax": RISKY}, feasible=False, q=0.9), 0.99, 2.0),
        Retrieved(_item(2, {"softmax": {**SAFE, "BLOCK_R": 512}}, q=0.1), 0.9, 0.5),
        Retrieved(_item(3, {"softmax": SAFE}, q=0.6), 0.8, 0.1),
        Retrieved(_item(4, {"matmul": {"BLOCK_M": 32}}, q=1.0), 0.7, 0.0),  # other family: ignored here
    ]
    cfg, origin = draft_config(["softmax"], _request(ctx))
    assert cfg["softmax"] == {**S.default_config("softmax", "cuda"), **SAFE} and origin["softmax"] == "memory:3"
    # a failed draft of this task moves on to the next-best experience, then to sampling
    cfg1, origin1 = draft_config(["softmax"], _request(ctx, attempt=1))
    assert cfg1["softmax"]["BLOCK_R"] == 512 and origin1["softmax"] == "memory:2"
    _, origin2 = draft_config(["softmax"], _request(ctx, attempt=2))
    assert origin2["softmax"].startswith("sampled")


def test_risky_configurations_of_other_tasks_rank_after_safe_ones():
    risky_ok = Retrieved(_item(1, {"softmax": RISKY}, q=0.9), 0.99, 2.0)  # worked for another task's shapes
    safe = Retrieved(_item(2, {"softmax": SAFE}, q=0.1), 0.5, 0.0)
    cfg, origin = draft_config(["softmax"], _request([risky_ok, safe]))
    assert origin["softmax"] == "memory:2" and cfg["softmax"]["mode"] == "loop"
    cfg1, origin1 = draft_config(["softmax"], _request([risky_ok, safe], attempt=1))
    assert origin1["softmax"] == "memory:1+hedged"  # another task's risky knob is replaced by the safe value
    assert cfg1["softmax"]["mode"] == S.default_config("softmax", "cuda")["mode"] and cfg1["softmax"]["BLOCK_R"] == 64
    raw, _ = draft_config(["softmax"], _request([risky_ok, safe], attempt=1), transfer_risky=True)
    assert raw["softmax"]["mode"] == "one_pass"
    same_task = _item(3, {"softmax": RISKY}, q=0.9)
    same_task.task_id = "task"  # this very task: its risky configuration is known to work here
    assert draft_config(["softmax"], _request([Retrieved(same_task, 1.0, 2.0), safe]))[1]["softmax"] == "memory:3"


def test_sampling_avoids_risky_values_seen_only_in_failures():
    bad = [Retrieved(_item(i, {"softmax": RISKY}, feasible=False), 0.9, 0.0) for i in range(3)]
    for seed in range(40):
        cfg, origin = draft_config(["softmax"], _request(bad, seed=seed))
        assert cfg["softmax"]["mode"] != "one_pass" and origin["softmax"] == "sampled-avoiding-failures"


def test_without_memory_drafts_are_sampled_per_seed_and_attempt():
    drafts = [draft_config(["softmax", "matmul"], _request(seed=s))[0] for s in range(60)]
    assert drafts[0] == draft_config(["softmax", "matmul"], _request(seed=0))[0]  # deterministic
    assert len({str(d) for d in drafts}) > 30
    risky = sum(bool(S.is_risky("softmax", d["softmax"]) or S.is_risky("matmul", d["matmul"])) for d in drafts)
    assert 0 < risky < len(drafts)  # the space has genuinely risky and safe choices
    later = [draft_config(["softmax"], _request(seed=0, attempt=a))[0] for a in range(1, 6)]
    assert any(c["softmax"] != drafts[0]["softmax"] for c in later)  # a new attempt draws anew
    cfg, origin = draft_config(["softmax"], _request(), sample_without_memory=False)
    assert cfg["softmax"] == S.default_config("softmax", "cuda") and origin["softmax"] == "default"


def test_on_the_cpu_drafts_never_use_size_bound_risky_values():
    # the CPU checks shrunk sizes only: a one-pass row or an even K loop could pass there and be wrong at
    # the problem's own sizes, so neither memory nor sampling may bring one in
    same_task = _item(3, {"softmax": RISKY}, q=0.9)
    same_task.task_id = "task"
    cfg, origin = draft_config(["softmax"], _request([Retrieved(same_task, 1.0, 2.0)], backend="cpu"))
    assert cfg["softmax"]["mode"] == S.default_config("softmax", "cpu")["mode"]
    assert origin["softmax"] == "memory:3+sized" and cfg["softmax"]["BLOCK_R"] == 64
    for seed in range(40):
        drafts, _ = draft_config(["softmax", "matmul", "reduction"], _request(seed=seed, backend="cpu"))
        assert not any(S.size_bound(f, c) for f, c in drafts.items())
    # elsewhere the verifier checks the problem's own sizes: sampling still explores them
    gpu = [draft_config(["softmax"], _request(seed=s))[0]["softmax"]["mode"] for s in range(40)]
    assert "one_pass" in gpu


def test_refine_mutates_one_knob_and_skips_tried_children():
    base = {"matmul": {**S.default_config("matmul")}}
    start = _item(10, base, latency=2.0)
    faster = _item(11, {"matmul": {**base["matmul"], "BLOCK_N": 128}}, latency=1.0)
    req = _request(stage="refine", backend="cuda", start_point=start, children=[faster])
    cfg, how = refine_config(["matmul"], req)
    S.validate("matmul", cfg["matmul"])
    assert sum(cfg["matmul"][k] != base["matmul"][k] for k in base["matmul"]) == 1
    assert cfg != faster.meta["offline"]["config"] and how.startswith("mutation:matmul.")
    assert how == "mutation:matmul.BLOCK_N"  # the knob that made a child faster is tried first


def test_draft_from_the_real_memory(tmp_path):
    memory_mod = pytest.importorskip("evokernel.memory")
    from evokernel.memory import NewItem, RetrievalSettings

    src = "import torch\nimport torch.nn as nn\nclass Model(nn.Module):\n    def forward(self, x):\n        return torch.softmax(x, -1)\n"
    with memory_mod.Memory.open(tmp_path / "memory.db") as memory:
        memory.add([NewItem(
            kind="experience", task_id="softmax_a", task_name="softmax_a", backend="cpu", stage="draft", code="",
            lesson="", outcome={}, reward=1.0, parent_id=None, run_id=None, feasible=True,
            meta={"offline": {"families": ["softmax"], "config": {"softmax": SAFE}}}, task_source=src,
        )])  # fmt: skip
        ctx = memory.retrieve(src, "draft", "cpu", RetrievalSettings(epsilon=0.0))
    cfg, origin = draft_config(["softmax"], _request(ctx))
    assert cfg["softmax"]["mode"] == "loop" and origin["softmax"].startswith("memory:")
