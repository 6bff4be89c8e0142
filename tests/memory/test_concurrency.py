"""Reads from several threads while another thread writes see consistent, committed states.

The memory serializes writes under the store's lock (one writer connection) and serves reads from a
pool of SQLite connections (WAL: readers never block on the writer) and the index's shared lock.
"""

from __future__ import annotations

import threading

from evokernel.memory import Memory, RetrievalSettings

SETTINGS = RetrievalSettings(mode="value", n=4, epsilon=0.1, pool_factor=3.0)


def test_readers_see_consistent_states_while_a_writer_writes(tmp_path, make_item, programs) -> None:
    names = ["softmax", "log_softmax", "relu", "leaky_relu", "conv2d", "matmul"]
    path = tmp_path / "m.sqlite"
    mem = Memory.open(path)
    seed_ids = mem.add([make_item(n, code=f"seed {n}", lesson=f"seed {n}") for n in names])
    writes = 60
    stop = threading.Event()
    errors: list[BaseException] = []
    written: list[int] = []

    def writer() -> None:
        try:
            for i in range(writes):
                name = names[i % len(names)]
                tag = f"w{i}"
                (new_id,) = mem.add([make_item(name, code=tag, lesson=tag, parent_id=seed_ids[i % len(names)])])
                written.append(new_id)
                mem.record_rewards([new_id, seed_ids[i % len(names)]], "draft", 1.0 if i % 2 else -1.0)
                mem.normalize_reward("draft", float(i % 3) - 1.0)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            stop.set()

    def reader(k: int) -> None:
        try:
            last_count = 0
            rounds = 0
            while not stop.is_set() or rounds < 3:
                rounds += 1
                name = names[(k + rounds) % len(names)]
                got = mem.retrieve(programs[name], "draft", "cpu", SETTINGS, seed=rounds)
                assert len(got) == 4
                assert len({r.item.id for r in got}) == 4
                for r in got:  # every retrieved item is a whole, committed row
                    assert r.item.kind == "experience" and r.item.backend == "cpu"
                    assert r.item.code == r.item.lesson
                    assert -1.0 <= r.item.q_draft <= 1.0
                items = mem.items(kind="experience")
                assert [i.id for i in items] == sorted(i.id for i in items)
                assert len(items) >= last_count  # never goes back in time
                last_count = len(items)
                for child in mem.children(seed_ids[k % len(names)]):
                    assert child.parent_id == seed_ids[k % len(names)] and child.code.startswith("w")
                count, _, var = mem.reward_stats("draft")
                assert count >= 0 and var >= 0.0
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=reader, args=(k,)) for k in range(4)]
    threads.append(threading.Thread(target=writer))
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    assert not any(t.is_alive() for t in threads)
    assert not errors, errors[0]
    assert len(written) == writes and len(mem) == writes + len(names)
    answer = [r.item.id for r in mem.retrieve(programs["relu"], "draft", "cpu", SETTINGS, seed=3)]
    assert mem.reward_stats("draft")[0] == writes
    mem.close()
    with Memory.open(path, snapshot=False) as again:  # the index and the store agree after the storm
        assert [r.item.id for r in again.retrieve(programs["relu"], "draft", "cpu", SETTINGS, seed=3)] == answer
        assert again.integrity_check() == "ok"
