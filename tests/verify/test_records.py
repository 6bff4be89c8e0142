"""Settings, Verdict records, secret scrubbing and error messages (no workers involved)."""

from __future__ import annotations

import json

import pytest

from evokernel.errors import UserError
from evokernel.verify import STATUSES, Verdict, VerifySettings
from evokernel.verify.environment import clean_env, is_secret_name, redact, secret_values
from evokernel.verify.messages import crash_location, describe_exception, trim


def test_settings_defaults_match_the_contract() -> None:
    s = VerifySettings()
    assert (s.backend, s.trials, s.policy, s.fit, s.max_elements) == ("auto", 5, "strict", "auto", 65536)
    assert s.atol is None and s.rtol is None
    assert s.resolved_fit("cpu") == "cpu" and s.resolved_fit("cuda") == "none"
    assert VerifySettings(fit="none").resolved_fit("cpu") == "none"


@pytest.mark.parametrize(
    ("field", "value"),
    [("backend", "tpu"), ("policy", "lenient"), ("fit", "gpu"), ("trials", 0), ("atol", -1.0),
     ("timeout_s", 0), ("memory_limit_gb", -2), ("start_method", "forkserver")],
)
def test_bad_settings_name_the_field(field: str, value: object) -> None:
    with pytest.raises(UserError, match=field):
        VerifySettings(**{field: value})


def test_settings_round_trip_and_unknown_keys() -> None:
    s = VerifySettings(backend="cpu", trials=3, atol=1e-3)
    assert VerifySettings.from_dict(s.to_dict()) == s
    with pytest.raises(UserError, match="unknown verify setting"):
        VerifySettings.from_dict({"trails": 3})


def test_verdict_is_json_serialisable_and_round_trips() -> None:
    v = Verdict(status="incorrect", message="trial 0: wrong", trials=[{"name": "trial_0", "ok": False}],
                sizes={"dim": 4}, checks={"correctness": "fail: trial_0"})
    data = json.loads(v.to_json())
    assert data["status"] == "incorrect" and data["feasible"] is False
    again = Verdict.from_dict({**data, "future_field": 1})
    assert again == v
    assert Verdict(status="correct").feasible
    assert "rejected (caching)" in Verdict(status="rejected", rule="caching", message="x").summary()


def test_verdict_status_is_one_of_eight() -> None:
    assert STATUSES == ("correct", "compile_error", "runtime_error", "incorrect", "rejected", "timeout",
                        "crashed", "memory_exceeded")
    with pytest.raises(ValueError):
        Verdict(status="ok")


@pytest.mark.parametrize(
    "name",
    ["OPENAI_API_KEY", "ANTHROPIC_API_KEY", "AWS_SECRET_ACCESS_KEY", "GITHUB_TOKEN", "DB_PASSWORD",
     "MY_CREDENTIALS_FILE", "AZURE_API_BASE", "HF_HOME", "LITELLM_LOG", "SSH_AUTH_SOCK", "gemini_api_key"],
)
def test_secret_names(name: str) -> None:
    assert is_secret_name(name)


@pytest.mark.parametrize("name", ["PATH", "HOME", "LANG", "PYTHONPATH", "TRITON_INTERPRET", "CUDA_VISIBLE_DEVICES",
                                  "LD_LIBRARY_PATH", "OMP_NUM_THREADS"])
def test_ordinary_names(name: str) -> None:
    assert not is_secret_name(name)


def test_clean_env_and_redaction() -> None:
    env = {"PATH": "/bin", "OPENAI_API_KEY": "sk-test-secret-1", "X_TOKEN": "tok-abcdef", "HOME": "/root"}
    cleaned = clean_env(env, TRITON_INTERPRET="1")
    assert cleaned == {"PATH": "/bin", "HOME": "/root", "TRITON_INTERPRET": "1"}
    secrets = secret_values(env)
    assert set(secrets) == {"sk-test-secret-1", "tok-abcdef"}
    record = {"message": "leaked sk-test-secret-1!", "trials": [{"error": "tok-abcdef"}], "n": 3}
    assert redact(record, secrets) == {"message": "leaked [redacted]!", "trials": [{"error": "[redacted]"}], "n": 3}


def test_trim_is_one_line_and_bounded() -> None:
    assert trim("a\n  b\tc") == "a b c"
    assert len(trim("x" * 1000)) == 400


def test_describe_exception_points_at_the_candidate(tmp_path) -> None:
    path = tmp_path / "candidate.py"
    path.write_text("def forward(x):\n    y = 1\n    return x[10]\n")
    code = compile(path.read_text(), str(path), "exec")
    namespace: dict = {}
    exec(code, namespace)
    try:
        namespace["forward"]([1, 2])
    except IndexError as exc:
        info = describe_exception(exc, str(path), frozenset())
    assert info.line == 3 and info.function == "forward"
    assert info.message().startswith("candidate.py:3 in forward: IndexError: list index out of range")
    assert "`return x[10]`" in info.message()


def test_crash_location_from_faulthandler_dump() -> None:
    dump = (
        'Fatal Python error: Segmentation fault\n\nCurrent thread 0x1 (most recent call first):\n'
        '  File "/x/triton/runtime/interpreter.py", line 550 in create_masked_load\n'
        '  File "/job/scratch/candidate.py", line 11 in wild_kernel\n'
        '  File "/job/scratch/candidate.py", line 20 in forward\n'
    )
    assert crash_location(dump, "/job/scratch/candidate.py") == "candidate.py:11 in wild_kernel"
    assert crash_location("nothing", "/job/scratch/candidate.py") is None


def test_worker_records_are_sanitised() -> None:
    from evokernel.verify.verifier import _sanitize

    forged = {"status": "correct", "kernels": "relu_kernel", "checks": ["x"], "message": "m" * 5000, "ops": [1, 2]}
    clean = _sanitize(forged)
    assert clean["status"] == "internal_error"  # only the parent decides "correct"
    assert clean["kernels"] == [] and clean["checks"] == {} and clean["ops"] == ["1", "2"]
    assert len(clean["message"]) <= 400
    assert _sanitize({"status": "rejected", "rule": "mutated_inputs"})["rule"] == "mutated_inputs"
