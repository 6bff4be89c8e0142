"""The full loop through litellm against a scripted OpenAI-compatible server, with the real verifier (CPU).

Replies: no code block, a compile error, a wrong kernel, a correct kernel. On the CPU the task ends
at its first correct kernel (speed cannot be measured there; refining is tested with simulated
latencies in test_loop.py).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from evokernel.agent.agent import REDACTED, Agent, as_task
from evokernel.agent.runrecord import write_synthesis_record
from evokernel.agent.settings import AgentSettings
from evokernel.memory import Memory
from fakes.openai_server import Error, FakeOpenAIServer, Raw, stall

DATA = Path(__file__).parent / "data"


def code(name: str) -> str:
    return (DATA / f"{name}.py").read_text()


def fenced(name: str, prose: str = "Here is the kernel.") -> str:
    return f"{prose}\n\n```python\n{code(name)}```\n"


def llm_settings(server: FakeOpenAIServer, *, budget: int = 6, mode: str = "value", **llm: object) -> AgentSettings:
    s = AgentSettings(budget=budget)
    s.llm.model = "openai/test-model"
    s.llm.api_base = server.url
    s.llm.max_retries = 1
    s.llm.backoff_base_s = 0.01
    s.llm.timeout_s = 20.0
    for k, v in llm.items():
        setattr(s.llm, k, v)
    s.retrieval.mode = mode
    s.retrieval.epsilon = 0.0
    s.verify.backend = "cpu"
    s.verify.trials = 2
    return s


@pytest.fixture
def fake_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-not-a-secret")


@pytest.fixture(scope="module")
def verifier():
    from evokernel.verify import Verifier, VerifySettings

    with Verifier(VerifySettings(backend="cpu", trials=2), workers=1) as v:
        yield v


def test_full_loop_through_litellm(tmp_path: Path, fake_key: None, verifier) -> None:
    script = [
        "I would write a kernel that applies max(x, 0) elementwise.",  # no code block
        fenced("relu_compile_error"),
        fenced("relu_wrong"),
        fenced("relu_correct"),
        fenced("relu_correct", "A faster one."),  # never asked for: the CPU cannot time a refinement
    ]
    with FakeOpenAIServer(*script) as server, Memory.open(tmp_path / "m.sqlite") as memory:
        agent = Agent(llm_settings(server), memory=memory, verifier=verifier)
        result = agent.synthesize(DATA / "relu_problem.py")
        record_path = write_synthesis_record(agent, as_task(DATA / "relu_problem.py"), result, tmp_path / "out.py", 1.0)
        bodies = server.chat_bodies

    statuses = [a.status for a in result.attempts]
    assert statuses == ["no_kernel", "compile_error", "incorrect", "correct"]
    assert [a.stage for a in result.attempts] == ["draft"] * 4
    assert result.solved and "refining needs a GPU" in result.stop_reason
    assert len(bodies) == 4  # the fifth reply was never requested
    assert [a.reward for a in result.attempts] == [-1.0, -1.0, -1.0, 1.0]

    # Q values: contexts are the task's earlier attempts (equal similarity, ranked by Q, then id)
    ids = [a.item_id for a in result.attempts]
    assert [a.context_ids for a in result.attempts] == [[], [ids[0]], [ids[1], ids[0]], [ids[2], ids[1], ids[0]]]
    # attempt 1 (reward -1): q0 -0.2; attempt 2 (-1): q1 -0.2, q0 -0.36; attempt 3 (+1): all move towards +1
    q0, q1, q2 = -0.36 + 0.2 * 1.36, -0.2 + 0.2 * 1.2, 0.2
    assert [result.attempts[3].q_changes[str(i)] for i in ids[:3]] == [
        pytest.approx([-0.36, q0]), pytest.approx([-0.2, q1]), pytest.approx([0.0, q2])
    ]

    # memory contents: every attempt with its code, lesson and outcome
    with Memory.open(tmp_path / "m.sqlite") as memory:
        items = [memory.get(i) for i in ids]
        assert [i.q_draft for i in items[:3]] == pytest.approx([q0, q1, q2])
        assert items[0].code == "" and "code block" in items[0].lesson
        assert items[1].outcome["status"] == "compile_error" and "SyntaxError" in items[1].lesson
        assert items[2].lesson.startswith("wrong result")
        assert items[3].feasible and items[3].code == code("relu_correct")
        assert items[3].meta["model"] == "openai/test-model"

    # prompts: feedback of the previous attempt and the retrieved items are in them
    prompts = [body["messages"][1]["content"] for body in bodies]
    assert "Feedback on your previous attempt" not in prompts[0]
    assert "no" in prompts[1] and "code block" in prompts[1]
    assert "SyntaxError" in prompts[2]
    assert "tl.maximum(x, 0.0) * SCALE * 0.5" in prompts[3]  # the wrong kernel, retrieved as an experience
    assert "wrong result" in prompts[3]
    assert all("## Notes" in p for p in prompts)  # knowledge items by relevance

    # the run record: every attempt with retrieved ids, sizes, verdict, reward, Q changes, tokens
    record = json.loads(record_path.read_text())
    attempts = record["result"]["attempts"]
    assert [a["status"] for a in attempts] == statuses
    assert attempts[3]["context_ids"] == [ids[2], ids[1], ids[0]]
    assert all(a["prompt_chars"] > 0 and a["tokens_in"] > 0 for a in attempts)
    assert attempts[3]["verdict"]["status"] == "correct"
    assert record["ledger"]["total"]["requests"] == 4
    assert record["settings"]["verify"]["input_key"] == REDACTED  # the input secret stays in the memory
    assert (tmp_path / "out.py").read_text() == code("relu_correct")


def test_second_task_sees_first_tasks_kernel_and_none_does_not(tmp_path: Path, fake_key: None, verifier) -> None:
    with FakeOpenAIServer(fenced("relu_correct"), fenced("scale_correct"), fenced("scale_correct")) as server:
        with Memory.open(tmp_path / "m.sqlite") as memory:
            Agent(llm_settings(server), memory=memory, verifier=verifier).synthesize(DATA / "relu_problem.py")
            second = Agent(llm_settings(server), memory=memory, verifier=verifier).synthesize(DATA / "scale_problem.py")
            assert second.solved
            with_memory = server.chat_bodies[1]["messages"][1]["content"]
            assert "relu_problem" in with_memory and "SCALE=1.0" in with_memory
            Agent(llm_settings(server, mode="none"), memory=memory, verifier=verifier).synthesize(
                DATA / "scale_problem.py"
            )
            without = server.chat_bodies[2]["messages"][1]["content"]
            assert "SCALE=1.0" not in without and "## Notes" not in without


@pytest.mark.parametrize(
    ("reply", "reason"),
    [
        (Error(500, "upstream exploded"), "server error"),
        (Error(429, "slow down"), "rate"),
        (Raw("{not json"), ""),
        (stall(30.0), "tim"),
    ],
    ids=["500", "429", "malformed-json", "timeout"],
)
def test_provider_errors_become_failed_attempts(tmp_path: Path, fake_key: None, verifier, reply, reason) -> None:
    with FakeOpenAIServer(reply, reply, fenced("relu_correct")) as server, Memory.open(tmp_path / "m.sqlite") as memory:
        settings = llm_settings(server, budget=3, timeout_s=1.0)
        result = Agent(settings, memory=memory, verifier=verifier).synthesize(DATA / "relu_problem.py")
    first = result.attempts[0]
    assert first.status == "no_kernel" and first.proposal_error
    assert reason.lower() in first.proposal_error.lower()
    assert first.lesson.startswith("no kernel:")
    assert result.solved  # the run went on to the next attempt


def test_bad_key_stops_the_run_with_one_line(tmp_path: Path, fake_key: None, capsys: pytest.CaptureFixture) -> None:
    from evokernel.cli import main

    with FakeOpenAIServer(Error(401, "Incorrect API key provided")) as server:
        rc = main(["synthesize", str(DATA / "relu_problem.py"), "--model", "openai/test-model", "--api-base",
                   server.url, "--memory", str(tmp_path / "m.sqlite"), "--backend", "cpu", "--out",
                   str(tmp_path / "k.py")])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2
    assert err[-1].startswith("evokernel: error:") and "key" in err[-1].lower()
    assert "Traceback" not in "\n".join(err)


def test_missing_key_is_reported_before_any_request(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                    capsys: pytest.CaptureFixture) -> None:
    from evokernel.cli import main

    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    rc = main(["synthesize", str(DATA / "relu_problem.py"), "--model", "openai/gpt-4o", "--memory",
               str(tmp_path / "m.sqlite"), "--backend", "cpu"])
    err = capsys.readouterr().err
    assert rc == 2 and "OPENAI_API_KEY" in err and "Traceback" not in err


def test_an_unreachable_provider_stops_the_run_and_keeps_the_memory(tmp_path: Path, fake_key: None, verifier) -> None:
    from evokernel.agent.loop import MAX_PROVIDER_FAILURES
    from evokernel.errors import UserError

    with FakeOpenAIServer(default=Error(503, "overloaded")) as server, Memory.open(tmp_path / "m.sqlite") as memory:
        agent = Agent(llm_settings(server, budget=30), memory=memory, verifier=verifier)
        with pytest.raises(UserError, match="failed 8 times in a row"):
            agent.synthesize(DATA / "relu_problem.py")
        assert len(memory.items(kind="experience")) == MAX_PROVIDER_FAILURES == 8


def test_a_recorded_run_replays_exactly_into_a_fresh_memory(tmp_path: Path, fake_key: None, verifier) -> None:
    # the wrong kernel's feedback (where the mismatches are) goes into the next prompt: a replay asks the
    # same questions only when it verifies on the same inputs, whose secret the reply cache keeps
    script = [fenced("relu_wrong"), fenced("relu_wrong", "Try again."), fenced("relu_correct")]
    cache = tmp_path / "replies.sqlite"
    with FakeOpenAIServer(*script) as server, Memory.open(tmp_path / "a.sqlite") as memory:
        recorded = Agent(llm_settings(server, cache_path=str(cache)), memory=memory, verifier=verifier)
        first = recorded.synthesize(DATA / "relu_problem.py")
        assert len(server.chat_bodies) == 3
        settings = llm_settings(server, cache_path=str(cache), cache_mode="replay")
    with Memory.open(tmp_path / "b.sqlite") as memory:  # the server is gone: every reply from the cache
        replayed = Agent(settings, memory=memory, verifier=verifier)
        second = replayed.synthesize(DATA / "relu_problem.py")
    assert [a.status for a in first.attempts] == ["incorrect", "incorrect", "correct"]
    assert [a.status for a in second.attempts] == [a.status for a in first.attempts]
    assert all(a.cached for a in second.attempts)
    assert second.best_code == first.best_code
    assert replayed.settings.verify.input_key == recorded.settings.verify.input_key
