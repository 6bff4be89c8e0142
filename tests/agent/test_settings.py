"""The settings tree: TOML file, overrides, validation with clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from evokernel.agent.settings import AgentSettings, apply_overrides, load_settings
from evokernel.errors import UserError


def test_defaults_follow_the_design() -> None:
    s = load_settings()
    assert s.budget == 30 and s.alpha == 0.2
    assert s.retrieval.mode == "value" and s.retrieval.n == 4 and s.retrieval.epsilon == 0.1
    assert s.retrieval.pool_factor == 3.0 and s.retrieval.pool_growth == 1.5 and s.retrieval.pool_factor_cap == 30.0
    assert s.retrieval.q_floor == -0.8
    assert s.verify.atol is None or s.verify.atol == 1e-2


def test_toml_file_sets_nested_settings(tmp_path: Path) -> None:
    f = tmp_path / "evokernel.toml"
    f.write_text('budget = 7\n[retrieval]\nmode = "similarity"\nn = 2\n[llm]\nmodel = "openai/x"\n')
    s = load_settings(f)
    assert (s.budget, s.retrieval.mode, s.retrieval.n, s.llm.model) == (7, "similarity", 2, "openai/x")


def test_unknown_key_names_the_file_and_key(tmp_path: Path) -> None:
    f = tmp_path / "bad.toml"
    f.write_text("[retrieval]\nmood = 1\n")
    with pytest.raises(UserError, match=r"bad.toml \[retrieval\]: unknown setting 'mood'"):
        load_settings(f)


def test_missing_and_broken_files_are_user_errors(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="no such settings file"):
        load_settings(tmp_path / "nope.toml")
    (tmp_path / "broken.toml").write_text("budget = = 3")
    with pytest.raises(UserError, match="not a valid TOML"):
        load_settings(tmp_path / "broken.toml")


def test_overrides_and_validation() -> None:
    s = apply_overrides(AgentSettings(), {"budget": 5, "retrieval.mode": "none", "seed": None})
    assert s.budget == 5 and s.retrieval.mode == "none" and s.seed == 0
    with pytest.raises(UserError, match="budget must be at least 1"):
        apply_overrides(AgentSettings(), {"budget": 0})
    with pytest.raises(UserError, match="retrieval mode"):
        apply_overrides(AgentSettings(), {"retrieval.mode": "magic"})
    with pytest.raises(UserError, match="unknown setting"):
        apply_overrides(AgentSettings(), {"retrieval.nope": 1})


def test_executor_settings_from_a_file_and_their_checks(tmp_path: Path) -> None:
    f = tmp_path / "cluster.toml"
    f.write_text('executor = "ray"\nray_address = "10.0.0.5:6379"\nworkers = 16\n')
    s = load_settings(f)
    assert (s.executor, s.ray_address, s.workers) == ("ray", "10.0.0.5:6379", 16)
    assert AgentSettings().executor == "local" and AgentSettings().ray_address is None
    with pytest.raises(UserError, match="executor must be local or ray"):
        apply_overrides(AgentSettings(), {"executor": "dask"})
    with pytest.raises(UserError, match="only used by the ray executor"):
        apply_overrides(AgentSettings(), {"ray_address": "auto"})


def test_overrides_apply_before_the_file_is_validated(tmp_path: Path) -> None:
    f = tmp_path / "b0.toml"
    f.write_text("budget = 0\n")
    assert load_settings(f, {"budget": 3}).budget == 3  # the flag fixes what the file got wrong
    with pytest.raises(UserError, match=r"b0.toml: budget must be at least 1 \(got 0\)"):
        load_settings(f)  # the file alone still names itself and the setting
    with pytest.raises(UserError, match=r"budget must be at least 1 \(got 0\).*b0.toml"):
        load_settings(f, {"seed": 4})
    r = tmp_path / "replay.toml"
    r.write_text('[llm]\ncache_mode = "replay"\n')
    s = load_settings(r, {"llm.cache_path": str(tmp_path / "cache.sqlite")})
    assert s.llm.cache_mode == "replay"
    with pytest.raises(UserError, match="unknown setting 'nope'"):
        load_settings(r, {"nope": 1})


def test_synthesize_flags_fix_a_settings_file(tmp_path: Path) -> None:
    import argparse

    from evokernel.commands.synthesize import add_agent_arguments, settings_from_args

    parser = argparse.ArgumentParser()
    add_agent_arguments(parser)
    f = tmp_path / "b0.toml"
    f.write_text("budget = 0\n")
    args = parser.parse_args(["--config", str(f), "--budget", "3"])
    assert settings_from_args(args).budget == 3


def _bench_args(argv: list[str]) -> "argparse.Namespace":
    import argparse

    from evokernel.commands import bench

    parser = argparse.ArgumentParser()
    bench.register(parser.add_subparsers())
    return parser.parse_args(["bench", *argv])


def test_bench_flags_fix_a_settings_file(tmp_path: Path) -> None:
    from evokernel.commands.bench import _agent_settings

    f = tmp_path / "b0.toml"
    f.write_text("budget = 0\n")
    s = _agent_settings(_bench_args(["--agent", "--config", str(f), "--rounds", "3", "--trials", "2"]))
    assert (s.budget, s.verify.trials, s.verify.backend) == (3, 2, "auto")
    with pytest.raises(UserError, match=r"budget must be at least 1 \(got 0\).*b0.toml"):
        _agent_settings(_bench_args(["--agent", "--config", str(f), "--trials", "2"]))  # errors still name the file


def test_bench_keeps_the_files_backend_unless_the_flag_is_given(tmp_path: Path) -> None:
    from evokernel.commands.bench import _agent_settings, verify_settings

    f = tmp_path / "cpu.toml"
    f.write_text("[verify]\nbackend = \"cpu\"\n")
    assert _agent_settings(_bench_args(["--agent", "--config", str(f)])).verify.backend == "cpu"
    assert _agent_settings(_bench_args(["--agent", "--config", str(f), "--backend", "auto"])).verify.backend == "auto"
    assert verify_settings(_bench_args(["--solutions", "x"])).backend == "auto"


@pytest.mark.parametrize(
    "text, match",
    [
        ('budget = "3"\n', r"t.toml: budget: expected an integer, got '3'"),
        ("budget = 2.5\n", r"t.toml: budget: expected an integer, got 2.5"),
        ("budget = true\n", r"t.toml: budget: expected an integer, got True"),
        ("alpha = \"0.2\"\n", r"t.toml: alpha: expected a number, got '0.2'"),
        ("executor = 3\n", r"t.toml: executor: expected a string, got 3"),
        ("[verify]\ntrials = \"5\"\n", r"t.toml \[verify\]: trials: expected an integer, got '5'"),
        ("[verify]\nprobes = 1\n", r"t.toml \[verify\]: probes: expected true or false, got 1"),
        ("[verify]\natol = [1]\n", r"t.toml \[verify\]: atol: expected a number, got \[1\]"),
        ("[retrieval]\nn = 1.0\n", r"t.toml \[retrieval\]: n: expected an integer, got 1.0"),
        ("[llm]\nextra = 3\n", r"t.toml \[llm\]: extra: expected a table, got 3"),
    ],
)
def test_a_value_of_the_wrong_type_names_the_file_and_key(tmp_path: Path, text: str, match: str) -> None:
    f = tmp_path / "t.toml"
    f.write_text(text)
    with pytest.raises(UserError, match=match):
        load_settings(f)


def test_an_integer_is_accepted_where_a_number_is_expected(tmp_path: Path) -> None:
    f = tmp_path / "t.toml"
    f.write_text("alpha = 1\n[verify]\ntimeout_s = 30\natol = 0\n[retrieval]\nepsilon = 0\n")
    s = load_settings(f)
    assert (s.alpha, s.verify.timeout_s, s.verify.atol, s.retrieval.epsilon) == (1.0, 30.0, 0.0, 0.0)
    assert isinstance(s.alpha, float) and isinstance(s.verify.timeout_s, float)


@pytest.mark.parametrize(
    "text, match",
    [
        ("[verify]\ntrials = 0\n", r"t.toml: verify setting trials=0: must be at least 1"),
        ("[verify]\npolicy = \"lax\"\n", r"t.toml: verify setting policy='lax'"),
        ("[verify]\ntimeout_s = -1.0\n", r"t.toml: verify setting timeout_s=-1.0: must be > 0"),
        ("[retrieval]\nn = -3\n", r"t.toml: retrieval n and n_knowledge must be >= 0"),
        ("[retrieval]\nepsilon = 2.0\n", r"t.toml: retrieval epsilon must lie in \[0, 1\]"),
        ("[retrieval]\npool_factor = 0.5\n", r"t.toml: retrieval pool_factor must be >= 1"),
        ("[retrieval]\nw_q = nan\n", r"t.toml: retrieval w_q must be a finite number"),
    ],
)
def test_verify_and_retrieval_tables_are_validated_when_loaded(tmp_path: Path, text: str, match: str) -> None:
    f = tmp_path / "t.toml"
    f.write_text(text)
    with pytest.raises(UserError, match=match):
        load_settings(f)


def test_flags_fix_the_verify_table_before_validation(tmp_path: Path) -> None:
    f = tmp_path / "t0.toml"
    f.write_text("[verify]\ntrials = 0\n[retrieval]\nn = -3\n")
    s = load_settings(f, {"verify.trials": 2, "retrieval.n": 1})
    assert (s.verify.trials, s.retrieval.n) == (2, 1)
    with pytest.raises(UserError, match=r"verify setting trials=0.*t0.toml"):
        load_settings(f, {"retrieval.n": 1})


def test_validate_reports_a_wrong_type_set_in_code() -> None:
    s = AgentSettings()
    s.budget = "3"  # type: ignore[assignment]
    with pytest.raises(UserError, match=r"budget: expected an integer, got '3'"):
        s.validate()
    s = AgentSettings()
    s.verify.trials = 0
    with pytest.raises(UserError, match="verify setting trials=0"):
        s.validate()
