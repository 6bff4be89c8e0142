"""Choosing configurations: from memory when drafting, by mutation when refining.

Drafting: for each template family of the plan, the feasible retrieved experiences
(``request.context``) that carry an offline configuration for that family are ranked -- safe
configurations before risky ones (a risky knob that worked for another task's shapes is weak
evidence for this task; an experience of the same task is taken at its word), then by Q_draft
(the value the memory learned for them), then by retrieval score -- and the configuration of the
``attempt``-th of them is reused (a failed draft of this task moves on to the next one). Its risky
knobs are kept only when the experience is of the same task; for another task they are replaced
by the family's safe values ("hedged"), since whether e.g. a one-pass row fits depends on shapes
the other task did not have (``transfer_risky=True`` reuses them as they are).

Without such experiences the configuration is *sampled* from the family's space with a generator
seeded by (request seed, task, attempt); risky values that appear only in retrieved *infeasible*
experiences are excluded from the draw. So on an empty memory a draft is risky with the space's
natural probability, and a memory that holds good configurations of similar tasks makes the first
draft right more often: that is the effect value-driven retrieval is meant to have. Measured with
the agent loop on the built-in levels 1-2 (52 tasks, CPU): see the tests and the offline benchmark.

On the CPU backend the verifier checks shrunk sizes only, so risky values whose correctness depends
on the sizes (``space.SIZE_BOUND``: a one-pass row, an even K loop) are replaced by safe ones in every
draft there ("+sized"): a kernel that passed at the shrunk sizes could be wrong at the problem's own.

Refining (GPU/NPU only: on the CPU there is no latency to improve): the start point's
configuration is mutated one knob at a time, skipping configurations its children already tried
and trying first the knobs whose change made a child faster.
"""

from __future__ import annotations

import hashlib
import random
from typing import Any

from evokernel.agent.offline import space as S

__all__ = ["offline_meta", "draft_config", "refine_config", "rng_for"]


def rng_for(seed: int, task_id: str, attempt: int, salt: str = "") -> random.Random:
    """A generator seeded from the request (stable across runs and processes)."""
    h = hashlib.sha256(f"{seed}|{task_id}|{attempt}|{salt}".encode()).digest()
    return random.Random(int.from_bytes(h[:8], "little"))


def offline_meta(item: Any) -> dict[str, Any] | None:
    """The offline proposer's record stored with a memory item, if any."""
    meta = getattr(item, "meta", None) or {}
    off = meta.get("offline")
    return off if isinstance(off, dict) and isinstance(off.get("config"), dict) else None


def _ranked(request: Any, family: str) -> tuple[list[tuple[Any, dict[str, Any]]], list[dict[str, Any]]]:
    """(feasible candidates ranked best first, configurations of infeasible experiences)."""
    good: list[tuple[tuple[float, ...], Any, dict[str, Any]]] = []
    bad: list[dict[str, Any]] = []
    for r in getattr(request, "context", []) or []:
        item = getattr(r, "item", r)
        off = offline_meta(item)
        if off is None or family not in off["config"]:
            continue
        cfg = dict(off["config"][family])
        try:
            S.validate(family, cfg)
        except ValueError:
            continue
        if getattr(item, "feasible", False):
            trusted = not S.is_risky(family, cfg) or getattr(item, "task_id", None) == getattr(request, "task_id", "")
            key = (
                float(trusted),
                float(getattr(item, "q_draft", 0.0)),
                float(getattr(r, "score", 0.0)),
                float(getattr(r, "similarity", 0.0)),
            )
            good.append((key, item, cfg))
        else:
            bad.append(cfg)
    good.sort(key=lambda t: t[0], reverse=True)
    # the same configuration from several experiences counts once (keep the best-ranked)
    seen: list[dict[str, Any]] = []
    out = []
    for _, item, cfg in good:
        if cfg not in seen:
            seen.append(cfg)
            out.append((item, cfg))
    return out, bad


def _avoid(family: str, good: list[dict[str, Any]], bad: list[dict[str, Any]]) -> dict[str, set[Any]]:
    avoid: dict[str, set[Any]] = {}
    for cfg in bad:
        for knob in S.is_risky(family, cfg):
            v = cfg[knob]
            if not any(g.get(knob) == v for g in good):
                avoid.setdefault(knob, set()).add(v)
    return avoid


def _hedged(family: str, cfg: dict[str, Any], backend: str | None) -> dict[str, Any]:
    safe = S.default_config(family, backend)
    return {k: (safe[k] if k in S.is_risky(family, cfg) else v) for k, v in cfg.items()}


def draft_config(
    families: list[str], request: Any, *, sample_without_memory: bool = True, transfer_risky: bool = False
) -> tuple[dict[str, dict[str, Any]], dict[str, str]]:
    """A configuration per family for a draft attempt, and where each came from."""
    config: dict[str, dict[str, Any]] = {}
    origin: dict[str, str] = {}
    attempt = int(getattr(request, "attempt", 0))
    for family in families:
        good, bad = _ranked(request, family)
        if attempt < len(good):
            item, cfg = good[attempt]
            backend = getattr(request, "backend", None)
            origin[family] = f"memory:{getattr(item, 'id', '?')}"
            same_task = getattr(item, "task_id", None) == getattr(request, "task_id", "")
            if S.is_risky(family, cfg) and not same_task and not transfer_risky:
                cfg = _hedged(family, cfg, backend)
                origin[family] += "+hedged"
            config[family] = {**S.default_config(family, backend), **cfg}
            continue
        if not sample_without_memory and not good and not bad:
            config[family] = S.default_config(family, getattr(request, "backend", None))
            origin[family] = "default"
            continue
        rng = rng_for(int(getattr(request, "seed", 0)), str(getattr(request, "task_id", "")), attempt, family)
        config[family] = S.sample(family, rng, _avoid(family, [c for _, c in good], bad))
        origin[family] = "sampled" if not bad else "sampled-avoiding-failures"
    if getattr(request, "backend", None) == "cpu":  # checked at shrunk sizes only: nothing size-bound
        for family, cfg in config.items():
            if S.size_bound(family, cfg):
                safe = S.default_config(family, "cpu")
                config[family] = {k: (safe[k] if k in S.size_bound(family, cfg) else v) for k, v in cfg.items()}
                origin[family] += "+sized"
    return config, origin


def refine_config(families: list[str], request: Any) -> tuple[dict[str, dict[str, Any]], str] | None:
    """A one-knob mutation of the start point's configuration not yet tried by its children."""
    start = getattr(request, "start_point", None)
    off = offline_meta(start) if start is not None else None
    backend = getattr(request, "backend", None)
    base = S.complete((off or {}).get("config", {}), families, backend)
    base = {f: base[f] for f in families}
    tried = []
    improving: list[tuple[str, str]] = []
    parent_latency = getattr(start, "latency_ms", None)
    for child in getattr(request, "children", []) or []:
        coff = offline_meta(child)
        if coff is None:
            continue
        ccfg = S.complete(coff["config"], families, backend)
        ccfg = {f: ccfg[f] for f in families}
        tried.append(ccfg)
        lat = getattr(child, "latency_ms", None)
        if (
            getattr(child, "feasible", False)
            and lat is not None
            and parent_latency is not None
            and lat < parent_latency
        ):
            for f in families:
                for knob, v in ccfg[f].items():
                    if base[f].get(knob) != v:
                        improving.append((f, knob))
    rng = rng_for(
        int(getattr(request, "seed", 0)),
        str(getattr(request, "task_id", "")),
        int(getattr(request, "attempt", 0)),
        "refine",
    )
    moves: list[tuple[str, str, dict[str, Any]]] = []
    for f in families:
        for cand in S.neighbors(f, base[f]):
            knob = next(k for k in cand if cand[k] != base[f].get(k))
            moves.append((f, knob, cand))
    rng.shuffle(moves)
    moves.sort(key=lambda m: 0 if (m[0], m[1]) in improving else 1)
    for f, knob, cand in moves:
        config = {**base, f: cand}
        if config not in tried and config != base:
            return config, f"mutation:{f}.{knob}"
    return None
