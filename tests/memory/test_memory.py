"""Memory: add/get, retrieval through select (modes, filters, exclude, pool factor), rewards, runs."""

from __future__ import annotations

import pytest

from evokernel.errors import UserError
from evokernel.memory import RetrievalSettings

GREEDY = dict(epsilon=0.0, n=1, pool_factor=10.0)


@pytest.fixture
def filled(open_memory, make_item, make_note):
    """A memory with cpu experiences of four tasks, one cuda experience and three notes."""
    mem = open_memory()
    ids = dict(
        zip(
            ["softmax", "log_softmax", "relu", "conv2d", "cuda_softmax"],
            mem.add([
                make_item("softmax"), make_item("log_softmax"), make_item("relu"), make_item("conv2d"),
                make_item("softmax", backend="cuda"),
            ]),  # fmt: skip
        )
    )
    notes = mem.add([
        make_note("Online softmax", "Softmax: subtract the row max, exp, divide by the row sum.", "any", ["softmax"]),
        make_note("Conv2d tiling", "Conv2d as implicit GEMM on cpu: tile channels.", "cpu", ["conv2d"]),
        make_note("CUDA softmax", "Softmax with warp shuffles on cuda: reduce the row max.", "cuda", ["softmax"]),
    ])  # fmt: skip
    ids.update(note_any=notes[0], note_cpu=notes[1], note_cuda=notes[2])
    return mem, ids


def test_add_get_items(filled, make_item) -> None:
    mem, ids = filled
    assert len(mem) == 8
    item = mem.get(ids["relu"])
    assert item.task_id == "level1/relu" and item.q_draft == 0.0 and item.visits_refine == 0
    assert [i.id for i in mem.items(task_id="level1/softmax")] == [ids["softmax"], ids["cuda_softmax"]]
    assert [i.id for i in mem.items(kind="knowledge", backend="any")] == [ids["note_any"]]
    with pytest.raises(KeyError):
        mem.get(12345)
    with pytest.raises(UserError):
        mem.add([make_item(backend="tpu")])
    assert mem.add([]) == []


def test_modes_value_similarity_none(filled, programs) -> None:
    mem, ids = filled
    for _ in range(12):  # the softmax task's own attempt keeps failing; relu's keeps helping
        mem.record_rewards([ids["softmax"]], "draft", -1.0)
        mem.record_rewards([ids["relu"]], "draft", 1.0)
    query = programs["softmax"]
    sim = mem.retrieve(query, "draft", "cpu", RetrievalSettings(mode="similarity", **GREEDY))
    assert [r.item.id for r in sim] == [ids["softmax"]]
    assert sim[0].similarity == pytest.approx(1.0, abs=1e-5)
    value = mem.retrieve(query, "draft", "cpu", RetrievalSettings(mode="value", **GREEDY))
    assert [r.item.id for r in value] == [ids["relu"]]
    assert mem.retrieve(query, "draft", "cpu", RetrievalSettings(mode="none")) == []
    # Q of the other stage is untouched, so refine retrieval is by similarity alone there.
    refine = mem.retrieve(query, "refine", "cpu", RetrievalSettings(mode="value", **GREEDY))
    assert [r.item.id for r in refine] == [ids["softmax"]]


def test_pool_factor_override_widens_the_pool(filled, programs) -> None:
    mem, ids = filled
    for _ in range(12):
        mem.record_rewards([ids["softmax"]], "draft", -1.0)
        mem.record_rewards([ids["relu"]], "draft", 1.0)
    settings = RetrievalSettings(mode="value", epsilon=0.0, n=1, pool_factor=1.0)
    # a pool of one holds only the most similar item, bad Q or not
    assert [r.item.id for r in mem.retrieve(programs["softmax"], "draft", "cpu", settings)] == [ids["softmax"]]
    wide = mem.retrieve(programs["softmax"], "draft", "cpu", settings, pool_factor=10.0)
    assert [r.item.id for r in wide] == [ids["relu"]]


def test_backend_kind_filter_and_exclude(filled, programs) -> None:
    mem, ids = filled
    settings = RetrievalSettings(mode="similarity", n=10, epsilon=0.0, pool_factor=10.0)
    cpu = mem.retrieve(programs["softmax"], "draft", "cpu", settings)
    assert {r.item.id for r in cpu} == {ids[k] for k in ("softmax", "log_softmax", "relu", "conv2d")}
    assert all(r.item.kind == "experience" and r.item.backend == "cpu" for r in cpu)
    sims = [r.similarity for r in cpu]
    assert sims == sorted(sims, reverse=True)
    assert [r.item.id for r in cpu][:2] == [ids["softmax"], ids["log_softmax"]]
    cuda = mem.retrieve(programs["softmax"], "draft", "cuda", settings)
    assert [r.item.id for r in cuda] == [ids["cuda_softmax"]]
    assert mem.retrieve(programs["softmax"], "draft", "npu", settings) == []
    excluded = mem.retrieve(programs["softmax"], "draft", "cpu", settings, exclude=[ids["softmax"], ids["relu"]])
    assert {r.item.id for r in excluded} == {ids["log_softmax"], ids["conv2d"]}
    with pytest.raises(UserError):
        mem.retrieve(programs["softmax"], "polish", "cpu", settings)


def test_epsilon_slots_are_seeded(filled, programs) -> None:
    mem, _ = filled
    settings = RetrievalSettings(mode="value", n=2, epsilon=0.9, pool_factor=2.0)
    runs = [[r.item.id for r in mem.retrieve(programs["relu"], "draft", "cpu", settings, seed=s)] for s in range(8)]
    again = [[r.item.id for r in mem.retrieve(programs["relu"], "draft", "cpu", settings, seed=s)] for s in range(8)]
    assert runs == again and all(len(r) == 2 and len(set(r)) == 2 for r in runs)


def test_knowledge_by_relevance_backend_or_any(filled, programs) -> None:
    mem, ids = filled
    cpu = mem.retrieve_knowledge(programs["softmax"], "cpu", 5)
    assert {r.item.id for r in cpu} == {ids["note_any"], ids["note_cpu"]}
    assert cpu[0].item.id == ids["note_any"]  # the softmax note is the relevant one
    assert cpu[0].similarity >= cpu[1].similarity and cpu[0].score == cpu[0].similarity
    cuda = mem.retrieve_knowledge("softmax row max on cuda", "cuda", 1)
    assert [r.item.id for r in cuda] == [ids["note_cuda"]]
    assert mem.retrieve_knowledge("anything", "npu", 3)[0].item.id == ids["note_any"]
    assert mem.retrieve_knowledge("anything", "cpu", 0) == []


def test_record_rewards_updates_persists_and_skips_knowledge(tmp_path, filled) -> None:
    mem, ids = filled
    got = mem.record_rewards([ids["relu"], ids["conv2d"], ids["relu"], ids["note_any"]], "draft", 1.0)
    assert got[ids["relu"]] == pytest.approx((0.0, 0.36))  # listed twice: updated twice
    assert got[ids["conv2d"]] == pytest.approx((0.0, 0.2))
    assert ids["note_any"] not in got
    refine = mem.record_rewards([ids["conv2d"]], "refine", -1.0, alpha=0.5)
    assert refine[ids["conv2d"]] == pytest.approx((0.0, -0.5))
    with pytest.raises(KeyError):
        mem.record_rewards([99999], "draft", 1.0)
    mem.close()
    from evokernel.memory import Memory

    with Memory.open(tmp_path / "m.sqlite") as again:
        relu, conv, note = again.get(ids["relu"]), again.get(ids["conv2d"]), again.get(ids["note_any"])
        assert (relu.q_draft, relu.visits_draft) == (pytest.approx(0.36), 2)
        assert (conv.q_draft, conv.visits_draft, conv.q_refine, conv.visits_refine) == (
            pytest.approx(0.2), 1, pytest.approx(-0.5), 1,
        )  # fmt: skip
        assert (note.q_draft, note.visits_draft) == (0.0, 0)
        assert again.record_rewards([ids["relu"]], "draft", 1.0)[ids["relu"]][0] == pytest.approx(0.36)


def test_reward_statistics_survive_reopen(tmp_path, open_memory) -> None:
    rewards = [0.5, -1.0, 0.25, 0.9, -0.3, 0.1, 0.7, -0.6, 0.4, 0.2, -0.1]
    mem = open_memory("a.sqlite")
    for r in rewards[:6]:
        mem.normalize_reward("refine", r)
    stats = mem.reward_stats("refine")
    mem.close()
    reopened = open_memory("a.sqlite")
    assert reopened.reward_stats("refine") == pytest.approx(stats)
    assert reopened.reward_stats("draft") == (0, 0.0, 0.0)
    straight = open_memory("b.sqlite")
    for r in rewards[:6]:
        straight.normalize_reward("refine", r)
    for r in rewards[6:]:
        assert reopened.normalize_reward("refine", r) == pytest.approx(straight.normalize_reward("refine", r))


def test_children_and_start_points(open_memory, make_item) -> None:
    mem = open_memory()
    (p, other_backend, failed) = mem.add([
        make_item("relu"), make_item("relu", backend="cuda"),
        make_item("relu", feasible=False, outcome={"status": "incorrect"}, reward=-1.0),
    ])  # fmt: skip
    kids = mem.add([
        make_item("relu", stage="refine", parent_id=p, latency_ms=0.5),
        make_item("relu", stage="refine", parent_id=p, feasible=False, reward=-1.0),
    ])  # fmt: skip
    assert [c.id for c in mem.children(p)] == kids
    assert mem.children(kids[0]) == []
    assert [s.id for s in mem.start_points("level1/relu", "cpu")] == [p, kids[0]]
    assert [s.id for s in mem.start_points("level1/relu", "cuda")] == [other_backend]
    assert mem.start_points("level1/softmax", "cpu") == []
    assert failed not in [s.id for s in mem.start_points("level1/relu", "cpu")]


def test_runs_and_stats(open_memory, make_item, make_note) -> None:
    mem = open_memory()
    run = mem.begin_run({"model": "offline", "seed": 0})
    mem.add([make_item("relu", run_id=run), make_item("softmax", feasible=False, run_id=run)])
    mem.add([make_note("t", "text")])
    mem.end_run(run, {"solved": 1})
    (rec,) = mem.runs()
    assert rec["id"] == run and rec["summary"] == {"solved": 1} and rec["ended"] >= rec["started"]
    stats = mem.stats()
    assert stats["items"] == 3 and stats["by_kind"] == {"experience": 2, "knowledge": 1}
    assert stats["tasks"] == 2 and stats["tasks_solved"] == 1 and stats["runs"] == 1
    assert stats["embedder"]["name"] == "structural-v1" and stats["embedder"]["dim"] == 256


def test_embedders_never_mix(tmp_path, open_memory, make_item, toy_embedder, programs) -> None:
    mem = open_memory()
    mem.add([make_item("relu"), make_item("conv2d")])
    mem.close()
    with pytest.raises(UserError, match="made with embedder 'structural-v1'") as info:
        open_memory(embedder=toy_embedder)
    assert "\n" not in str(info.value)
    toy = open_memory(embedder=toy_embedder, reembed=True)
    assert toy.embedder.name == "toy-v1" and toy_embedder.calls >= 2
    got = toy.retrieve(programs["relu"], "draft", "cpu", RetrievalSettings(mode="similarity", **GREEDY))
    assert len(got) == 1 and got[0].item.task_id == "level1/relu"
    toy.close()
    with pytest.raises(UserError, match="pass that embedder"):
        open_memory()  # the toy embedder cannot be rebuilt from its record: the caller must pass it
    again = open_memory(embedder=type(toy_embedder)())
    assert again.stats()["embedder"]["dim"] == 8
