"""The hostile corpus (tests/verify/hostile/): every candidate ends with the right status, and the
verifier keeps working afterwards.

Two passes: with the static gate (what users get), and with the gate turned off, so that each
dynamic layer (worker checks, sandbox, parent-side comparison) is shown to hold on its own. The few
files only the gate stops (torch run with the Python dispatch key disabled) are marked in GATED.
"""

from __future__ import annotations

import json
import socket
import threading

import pytest

# name -> (status, rule)
GATED = {
    "torch_fallback": ("rejected", "no_triton_kernel"),
    "unlaunched_kernel": ("rejected", "torch_compute"),
    "decoy_kernel": ("rejected", "torch_compute"),
    "try_except_fallback": ("rejected", "try_fallback"),
    "identity_relu": ("incorrect", None),
    "uninitialized_output": ("incorrect", None),
    "inplace_mutation": ("rejected", "mutated_inputs"),
    "output_aliases_input": ("rejected", "output_aliases_input"),
    "cached_result": ("rejected", "caching"),
    "gc_frames": ("rejected", "introspection"),
    "patched_clock": ("rejected", "monkey_patch"),
    "tf32_flag": ("rejected", "global_flags"),
    "segfault_ctypes": ("rejected", "native_code"),
    "segfault_kernel": ("crashed", None),
    "env_secret": ("rejected", "environment"),
    "network": ("rejected", "network"),
    "write_outside": ("rejected", "filesystem"),
    "kill_parent": ("rejected", "subprocess"),
    "patch_comparison": ("rejected", "monkey_patch"),
    "torch_compile": ("rejected", "torch_compile"),
    "side_stream": ("rejected", "side_stream"),
    "exit_early": ("rejected", "subprocess"),
    "side_thread": ("rejected", "threads"),
    "grid_callback": ("rejected", "torch_compute"),
    "pre_run_hook": ("rejected", "torch_compute"),
    "kernel_python_call": ("rejected", "kernel_python"),
    "launch_arg_callback": ("rejected", "torch_compute"),
    "numpy_host": ("rejected", "host_data"),
    "tolist_host": ("rejected", "host_compute"),
    "item_host": ("rejected", "host_compute"),
    "repr_host": ("rejected", "host_compute"),
    "shadow_method": ("incorrect", None),
    "class_patch": ("rejected", "monkey_patch"),
    "outputs_rewrite": ("rejected", "filesystem"),
    "answer_key": ("incorrect", None),
    "tuple_subclass": ("incorrect", None),
    "settrace": ("rejected", "introspection"),
    "signal_timer": ("rejected", "subprocess"),
    "read_reference_inputs": ("rejected", "filesystem"),
    "read_user_file": ("rejected", "introspection"),
    "symlink_progress": ("rejected", "filesystem"),
    "fifo_outputs": ("rejected", "filesystem"),
    "mixed_torch_copy": ("rejected", "torch_compute"),
    "mixed_ghost_sentinel": ("rejected", "torch_compute"),
    "patch_harness": ("rejected", "harness_access"),
    "markup_message": ("runtime_error", None),  # printed literally by `evokernel eval` (test_cli.py)
    "apply_host": ("rejected", "host_data"),
    "typing_annotation": ("rejected", "private_api"),
    # gate only: with the Python dispatch key disabled, no dynamic layer sees torch's ops
    "dispatch_escape": ("rejected", "private_api"),
    "mixed_reshape": ("rejected", "torch_compute"),
    "mixed_transpose": ("rejected", "torch_compute"),
}

# with the gate, under policy mixed: name -> (status, rule)
GATED_MIXED = {
    "mixed_torch_copy": ("rejected", "torch_did_the_work"),
    "mixed_ghost_sentinel": ("rejected", "torch_did_the_work"),
    "decoy_kernel": ("rejected", "ghost_replay"),
    "mixed_reshape": ("rejected", "torch_did_the_work"),
    "mixed_transpose": ("rejected", "torch_did_the_work"),
}

# the problem a candidate is checked against, where it is not relu
PROBLEMS = {"tuple_subclass": "relu_pair"}

# with the static gate off: name -> (policy, status, rule)
UNGATED = {
    "torch_fallback": ("strict", "rejected", "torch_compute"),
    "unlaunched_kernel": ("mixed", "rejected", "no_kernel_launched"),
    "decoy_kernel": ("mixed", "rejected", "ghost_replay"),
    "try_except_fallback": ("strict", "rejected", "torch_compute"),
    "gc_frames": ("strict", "rejected", "torch_compute"),
    "patched_clock": ("strict", "rejected", "patched_clock"),
    "tf32_flag": ("strict", "rejected", "global_flags_changed"),
    "segfault_ctypes": ("strict", "crashed", None),
    "patch_comparison": ("strict", "rejected", "patched_runtime"),
    "exit_early": ("strict", "crashed", None),
    "side_thread": ("strict", "runtime_error", None),  # seccomp: no thread can run beside the harness
    "grid_callback": ("strict", "rejected", "torch_compute"),  # ops inside a launch are recorded too
    "pre_run_hook": ("strict", "rejected", "torch_compute"),
    "kernel_python_call": ("strict", "rejected", "torch_compute"),
    "numpy_host": ("strict", "rejected", "host_compute"),
    "class_patch": ("strict", "rejected", "patched_runtime"),
    "outputs_rewrite": ("strict", "incorrect", None),  # no finalizer runs after the last forward
    "settrace": ("strict", "rejected", "patched_runtime"),
    "signal_timer": ("strict", "rejected", "patched_runtime"),
    "read_reference_inputs": ("strict", "runtime_error", None),  # Landlock: PermissionError
    "symlink_progress": ("strict", "crashed", None),
    "fifo_outputs": ("strict", "crashed", None),
    "tuple_subclass": ("strict", "incorrect", None),
    "mixed_torch_copy": ("mixed", "rejected", "torch_did_the_work"),
    "mixed_ghost_sentinel": ("mixed", "rejected", "torch_did_the_work"),
    "patch_harness": ("strict", "rejected", "patched_runtime"),
    "apply_host": ("strict", "rejected", "host_compute"),
    "mixed_reshape": ("mixed", "rejected", "torch_did_the_work"),
    "mixed_transpose": ("mixed", "rejected", "torch_did_the_work"),
}


def test_every_hostile_file_is_registered(data) -> None:
    names = {p.stem for p in (data.root / "hostile").glob("*.py")}
    registered = set(GATED) | set(UNGATED) | {"infinite_loop", "memory_bomb", "huge_allocation"}
    assert names <= registered, sorted(names - registered)


@pytest.mark.parametrize("name", sorted(GATED))
def test_gated(verifier, data, name: str) -> None:
    status, rule = GATED[name]
    verdict = verifier.evaluate(data.problem(PROBLEMS.get(name, "relu")), data.hostile(name))
    assert (verdict.status, verdict.rule) == (status, rule), verdict.summary()
    assert not verdict.feasible and verdict.message
    json.dumps(verdict.to_dict())


@pytest.mark.parametrize("name", sorted(GATED_MIXED))
def test_gated_mixed(verifier, data, settings, name: str) -> None:
    status, rule = GATED_MIXED[name]
    verdict = verifier.evaluate(data.problem("relu"), data.hostile(name), settings.replace(policy="mixed"))
    assert (verdict.status, verdict.rule) == (status, rule), verdict.summary()


@pytest.mark.parametrize("name", sorted(UNGATED))
def test_ungated(verifier, data, settings, name: str) -> None:
    policy, status, rule = UNGATED[name]
    s = settings.replace(static_gate=False, policy=policy)
    verdict = verifier.evaluate(data.problem(PROBLEMS.get(name, "relu")), data.hostile(name), s)
    assert (verdict.status, verdict.rule) == (status, rule), verdict.summary()
    assert verdict.checks["static_gate"].startswith("skipped")


def test_identity_kernel_fails_on_the_signed_probe(verifier, data) -> None:
    verdict = verifier.evaluate(data.problem("relu"), data.hostile("identity_relu"))
    assert verdict.status == "incorrect" and verdict.phase == "probe_signed"
    assert all(t["ok"] for t in verdict.trials if t["kind"] == "trial")  # relu is the identity on rand inputs
    assert not any(t["informative"] for t in verdict.trials if t["kind"] == "trial")
    assert "probe signed" in verdict.message and "the output equals input 0" in verdict.message


def test_uninitialised_output_reads_as_nan(verifier, data) -> None:
    verdict = verifier.evaluate(data.problem("relu"), data.hostile("uninitialized_output"))
    assert verdict.status == "incorrect"
    assert "NaN where the reference has none" in verdict.message and "everywhere" in verdict.message


def test_segfault_names_the_kernel_line(verifier, data) -> None:
    verdict = verifier.evaluate(data.problem("relu"), data.hostile("segfault_kernel"))
    assert verdict.status == "crashed" and verdict.signal == "SIGSEGV"
    line = data.hostile("segfault_kernel").splitlines().index("    v = tl.load(x_ptr + offs + (1 << 40))") + 1
    assert f"candidate.py:{line} in wild_kernel" in verdict.message


@pytest.mark.slow
def test_infinite_loop_times_out(verifier, data, settings) -> None:
    verdict = verifier.evaluate(data.problem("relu"), data.hostile("infinite_loop"), settings.replace(timeout_s=4.0))
    assert verdict.status == "timeout" and "trial 0" in verdict.message
    assert verdict.wall_s < 30


@pytest.mark.slow
@pytest.mark.parametrize("name", ["memory_bomb", "huge_allocation"])
def test_memory_bombs(verifier, data, settings, name: str) -> None:
    verdict = verifier.evaluate(data.problem("relu"), data.hostile(name), settings.replace(memory_limit_gb=1.0))
    assert verdict.status == "memory_exceeded", verdict.summary()


def test_secret_never_reaches_the_verdict(verifier, data, settings, monkeypatch) -> None:
    secret = "sk-test-secret-9f8e7d6c5b4a"
    monkeypatch.setenv("OPENAI_API_KEY", secret)
    verdict = verifier.evaluate(data.problem("relu"), data.hostile("env_secret"), settings.replace(static_gate=False))
    assert verdict.status == "runtime_error" and "LOOT" in verdict.message
    assert secret not in json.dumps(verdict.to_dict())


def test_network_is_closed(verifier, data, settings) -> None:
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    server.settimeout(0.2)
    port = server.getsockname()[1]
    received: list[bytes] = []
    stop = threading.Event()

    def accept() -> None:
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except OSError:
                continue
            received.append(conn.recv(100))
            conn.close()

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        src = data.hostile("network").replace("PORT = 0", f"PORT = {port}")
        verdict = verifier.evaluate(data.problem("relu"), src, settings.replace(static_gate=False))
    finally:
        stop.set()
        thread.join(2)
        server.close()
    assert verdict.status == "runtime_error" and "PermissionError" in verdict.message
    assert received == []


def test_writes_outside_scratch_are_blocked(verifier, data, settings, tmp_path) -> None:
    target = tmp_path / "owned.txt"
    src = data.hostile("write_outside").replace('"/tmp/evokernel-hostile-write"', repr(str(target)))
    verdict = verifier.evaluate(data.problem("relu"), src, settings.replace(static_gate=False))
    assert verdict.status == "runtime_error" and "Permission denied" in verdict.message
    assert not target.exists()


def test_supervisor_cannot_be_killed(verifier, data, settings) -> None:
    verdict = verifier.evaluate(data.problem("relu"), data.hostile("kill_parent"), settings.replace(static_gate=False))
    assert verdict.status in ("runtime_error", "crashed")
    if verdict.status == "runtime_error":  # Landlock signal scoping and seccomp present (this machine)
        assert "blocked: PermissionError, PermissionError, PermissionError" in verdict.message


def test_verifier_still_works_after_the_corpus(verifier, data) -> None:
    verdict = verifier.evaluate(data.problem("relu"), data.good("relu"))
    assert verdict.status == "correct", verdict.summary()


@pytest.mark.slow
def test_secret_in_an_ancestors_initial_environment(data, tmp_path) -> None:
    """The key sits in the initial environment of the process that runs the verifier (as when a user
    exports it in their shell); the candidate reads /proc/*/environ up its ancestry. The key must not
    come back in the verdict."""
    import os
    import subprocess
    import sys

    secret = "sk-test-secret-0a1b2c3d4e5f"
    script = (
        "import json, sys\n"
        "from pathlib import Path\n"
        "from evokernel.verify import Verifier, VerifySettings\n"
        "s = VerifySettings(backend='cpu', max_elements=1024, static_gate=False)\n"
        "with Verifier(s, workers=1) as v:\n"
        "    verdict = v.evaluate(Path(sys.argv[1]), Path(sys.argv[2]).read_text())\n"
        "print(json.dumps(verdict.to_dict()))\n"
    )
    env = {**os.environ, "OPENAI_API_KEY": secret, "ANTHROPIC_API_KEY": secret + "-2"}
    proc = subprocess.run(
        [sys.executable, "-c", script, str(data.problem("relu")), str(data.root / "hostile" / "env_secret.py")],
        env=env, capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert secret not in proc.stdout
    verdict = json.loads(proc.stdout)
    assert verdict["status"] == "runtime_error" and "LOOT" in verdict["message"]
    from evokernel.verify.sandbox.confine import landlock_abi

    if landlock_abi() >= 1:  # other processes' /proc entries are out of reach, not just redacted
        assert "PermissionError" in verdict["message"] and "[redacted]" not in verdict["message"]


def test_mixed_policy_still_accepts_torch_after_a_kernel(verifier, data, settings) -> None:
    """Torch working on what a kernel computed is policy mixed's purpose; only answers torch computed on
    its own (before any launch touched the data) are refused."""
    src = data.good("relu").replace("        return out", "        return torch.relu(out * 2.0) * 0.5")
    verdict = verifier.evaluate(data.problem("relu"), src, settings.replace(policy="mixed"))
    assert verdict.status == "correct", verdict.summary()
    assert verdict.checks["torch_did_the_work"] == "pass" and "aten.relu" in verdict.torch_ops


def test_host_reads_name_the_channel(verifier, data) -> None:
    verdict = verifier.evaluate(data.problem("relu"), data.hostile("tolist_host"))
    assert verdict.phase == "trial_0" and "tolist" in verdict.message and "at most 64" in verdict.message


def test_answer_key_fails_because_inputs_are_secret(verifier, data) -> None:
    verdict = verifier.evaluate(data.problem("relu"), data.hostile("answer_key"))
    assert verdict.status == "incorrect" and verdict.kernels_launched == ["copy_kernel"]
    assert verdict.checks["torch_ops"] == "pass: none"  # its torch work ran at import, unrecorded: no key fits


def _secret_file(tmp_path):
    secret = "sk-test-file-secret-7c6b5a4d3e2f"
    path = tmp_path / "credentials"
    path.write_text(f"token = {secret}\n")
    return secret, path


def test_user_files_are_unreadable(verifier, data, settings, tmp_path) -> None:
    secret, path = _secret_file(tmp_path)
    src = data.hostile("read_user_file").replace("/tmp/evokernel-hostile-secret", str(path))
    verdict = verifier.evaluate(data.problem("relu"), src, settings.replace(static_gate=False))
    assert secret not in json.dumps(verdict.to_dict())
    from evokernel.verify.sandbox.confine import landlock_abi

    if landlock_abi() >= 1:
        assert verdict.status == "runtime_error" and "PermissionError" in verdict.message, verdict.summary()


def test_reference_inputs_are_unreadable(verifier, data, settings) -> None:
    verdict = verifier.evaluate(data.problem("relu"), data.hostile("read_reference_inputs"),
                                settings.replace(static_gate=False))
    from evokernel.verify.sandbox.confine import landlock_abi

    if landlock_abi() >= 1:
        assert verdict.status == "runtime_error" and "PermissionError" in verdict.message, verdict.summary()
        assert verdict.phase == "build" and "inputs.pt" in verdict.message  # its own job.json was readable


def test_a_linked_progress_file_is_not_followed(verifier, data, settings, tmp_path) -> None:
    secret, path = _secret_file(tmp_path)
    src = data.hostile("symlink_progress").replace("/tmp/evokernel-hostile-secret", str(path))
    verdict = verifier.evaluate(data.problem("relu"), src, settings.replace(static_gate=False))
    assert verdict.status == "crashed"
    assert secret not in json.dumps(verdict.to_dict())


def test_fifos_in_the_job_directory_do_not_stall_the_parent(verifier, data, settings) -> None:
    verdict = verifier.evaluate(data.problem("relu"), data.hostile("fifo_outputs"), settings.replace(static_gate=False))
    assert verdict.status == "crashed" and verdict.wall_s < 30
