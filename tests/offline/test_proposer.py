"""OfflineProposer: the Proposer protocol, unsupported programs, mixed plans, memory-guided drafts."""

from __future__ import annotations

import asyncio
import json

import pytest
import torch

from evokernel.agent.offline import OfflineProposer
from evokernel.agent.offline import space as S
from evokernel.agent.types import Proposer, ProposalRequest
from evokernel.memory.records import Item, Retrieved

pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")


def _request(source: str, **kw) -> ProposalRequest:
    base = dict(task_id="t", task_name="t", task_source=source, backend="cpu", stage="draft", attempt=0, seed=0)
    base.update(kw)
    return ProposalRequest(**base)


def _propose(proposer: OfflineProposer, request: ProposalRequest):
    return asyncio.run(proposer.propose(request))


def test_is_a_proposer_and_records_its_configuration(make_problem, pair, close):
    src = make_problem("torch.softmax(x, dim=-1) * 2.0", "[torch.randn(4, 50)]")
    proposer = OfflineProposer()
    assert isinstance(proposer, Proposer) and proposer.name == "offline"
    proposal = _propose(proposer, _request(src))
    assert proposal.code and proposal.error is None
    off = proposal.meta["offline"]
    assert off["families"][0] == "softmax" and off["policy"] == "strict" and off["plan_signature"]
    assert set(off["config"]) >= {"softmax"} and off["origin"]["softmax"].startswith("sampled")
    json.dumps(proposal.meta)  # stored with the memory item


def test_unsupported_program_names_the_operators(make_problem):
    src = make_problem("torch.sort(x, dim=-1)[0]", "[torch.randn(4, 5)]")
    proposal = _propose(OfflineProposer(), _request(src))
    assert proposal.code is None and "aten.sort" in proposal.error and "--model" in proposal.error
    assert proposal.final  # retrying cannot help: the loop ends the task
    assert proposal.meta["offline"]["unsupported"] == ["aten.sort.default"]


def test_an_output_no_template_produces_names_its_operator(make_problem):
    src = make_problem("torch.nn.functional.max_pool2d(x, 2, return_indices=True)[1].float() + x[:, :, :2, :2]",
                       "[torch.randn(1, 2, 4, 4)]")
    proposal = _propose(OfflineProposer(policy="strict"), _request(src))
    assert proposal.code is None and proposal.final
    assert "max_pool2d_with_indices" in proposal.error and "getitem" not in proposal.error


def test_partial_lowering_is_mixed_and_says_so(make_problem, pair, close):
    src = make_problem("torch.relu(torch.sort(x, dim=-1)[0] * 2.0) + 1.0", "[torch.randn(4, 5)]")
    proposal = _propose(OfflineProposer(), _request(src))
    off = proposal.meta["offline"]
    assert proposal.code is not None and off["policy"] == "mixed" and off["torch_ops"] == ["aten.sort.default"]
    strict = _propose(OfflineProposer(policy="strict"), _request(src))
    assert strict.code is None and "aten.sort.default" in strict.error and "--policy mixed" in strict.error
    assert strict.final and not proposal.final


def test_refining_is_skipped_on_the_cpu(make_problem):
    src = make_problem("torch.relu(x)", "[torch.randn(4, 5)]")
    proposal = _propose(OfflineProposer(), _request(src, stage="refine"))
    assert proposal.code is None and "skipped" in proposal.error
    assert proposal.meta["offline"]["skipped"] == "refine-on-cpu"


def test_refining_on_a_gpu_backend_mutates_the_start_point(make_problem):
    src = make_problem("torch.relu(x)", "[torch.randn(4, 5)]")
    cfg = {"elementwise": S.default_config("elementwise")}
    start = Item(kind="experience", task_id="t", task_name="t", backend="cuda", stage="draft", code="", lesson="",
                 outcome={}, reward=1.0, parent_id=None, run_id=None, feasible=True, latency_ms=1.0,
                 meta={"offline": {"config": cfg}}, id=5)  # fmt: skip
    proposal = _propose(OfflineProposer(), _request(src, stage="refine", backend="cuda", start_point=start))
    new = proposal.meta["offline"]["config"]["elementwise"]
    assert proposal.code and sum(new[k] != cfg["elementwise"][k] for k in new) == 1


def test_memory_of_a_good_configuration_fixes_a_hard_case(make_problem, pair):
    """Long rows make a one-pass softmax wrong; drafts sampled without memory sometimes pick it (where
    the verifier checks the problem's own sizes: on a GPU), drafts that reuse a feasible experience's
    configuration do not; on the CPU, which checks shrunk sizes only, no draft picks it."""
    src = make_problem("torch.softmax(x, dim=-1)", "[torch.randn(3, 3000)]")
    proposer = OfflineProposer()
    wrong = 0
    risky_seed = None
    for seed in range(24):
        off = _propose(proposer, _request(src, seed=seed, backend="cuda")).meta["offline"]
        if off["config"]["softmax"]["mode"] == "one_pass":
            wrong += 1
            risky_seed = seed
        cpu = _propose(proposer, _request(src, seed=seed)).meta["offline"]
        assert cpu["config"]["softmax"]["mode"] != "one_pass"
    assert wrong > 0 and risky_seed is not None
    # run one of the risky drafts: it cannot serve this task (its launcher refuses rows this long)
    from evokernel.agent.offline.codegen import generate

    risky = _propose(proposer, _request(src, seed=risky_seed, backend="cuda")).meta["offline"]["config"]
    with pytest.raises(ValueError, match="one_pass"):
        pair(src, generate(src, risky))
    good = {"softmax": {**S.default_config("softmax"), "mode": "online"}}
    item = Item(kind="experience", task_id="other", task_name="other", backend="cpu", stage="draft", code="",
                lesson="", outcome={}, reward=1.0, parent_id=None, run_id=None, feasible=True,
                meta={"offline": {"config": good}}, id=7, q_draft=0.5)  # fmt: skip
    for seed in range(24):
        proposal = _propose(proposer, _request(src, seed=seed, context=[Retrieved(item, 0.9, 1.0)]))
        assert proposal.meta["offline"]["config"]["softmax"]["mode"] == "online"
        assert proposal.meta["offline"]["origin"]["softmax"] == "memory:7"
    expected, got = pair(src, generate(src, proposal.meta["offline"]["config"]))
    torch.testing.assert_close(got[0], expected[0], atol=1e-5, rtol=1e-4)


def test_drafts_that_fail_alike_end_the_task_after_the_safe_defaults_failed_too(make_problem):
    """A lowering that is wrong whatever the configuration: the same verdict under different configurations
    brings the safe defaults in next, and when those fail alike the task ends (no budget spent on more)."""
    src = make_problem("torch.relu(x) * 2", "[torch.randn(4, 33)]")
    proposer = OfflineProposer()
    same = "status: incorrect\nmessage: trial 0: output (4, 33) wrong in 60/132 elements"
    origins, finals = [], []
    for attempt in range(6):
        p = _propose(proposer, _request(src, attempt=attempt, seed=11, feedback=same if attempt else None))
        finals.append(p.final)
        if p.final:
            assert "failed the same way" in p.error and "--model" in p.error and p.code is None
            break
        origins.append(p.meta["offline"]["origin"]["elementwise"])
    # two sampled configurations fail alike, so the safe defaults come next; they fail alike too: the end
    assert origins == ["sampled", "sampled", "default:after-repeated-failure"] and finals == [False] * 3 + [True]
    # a different failure each time is not a lowering bug: drafting goes on
    other = OfflineProposer()
    for attempt in range(6):
        p = _propose(other, _request(src, attempt=attempt, seed=11,
                                     feedback=f"status: incorrect\nmessage: wrong in {attempt} elements" if attempt else None))
        assert not p.final
