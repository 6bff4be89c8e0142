"""Self-contained HTML reports of bench runs: one run, or two compared side by side.

Plots are drawn with matplotlib's Agg canvas (no pyplot, no global backend switch) and embedded as
base64 PNG images, so the file needs no network and no companion files. Speed plots and numbers are
replaced by "not measured (CPU interpreter)" for CPU runs.
"""

from __future__ import annotations

import base64
import html
import io
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from evokernel.errors import UserError
from kernelbench.metrics import NOT_MEASURED_TEXT, P_VALUES, compute_metrics, fast_key, format_value
from kernelbench.records import RunRecords, read_run

__all__ = ["run_metrics", "render_html", "write_report"]

_RATE_KEYS = ("compile_rate", "correctness", *(fast_key(p) for p in P_VALUES if p > 0))
_RATE_LABELS = {"compile_rate": "compiled", "correctness": "correct", **{fast_key(p): f"fast_{p:g}" for p in P_VALUES}}
_COLORS = ("#4c72b0", "#55a868", "#dd8452", "#c44e52", "#8172b3", "#937860")
_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:2em auto;max-width:1200px;
color:#222;padding:0 1em}
h1{font-size:1.6em;margin-bottom:.2em}h2{font-size:1.25em;margin-top:1.8em;border-bottom:1px solid #ddd}
table{border-collapse:collapse;margin:.6em 0;font-size:.9em}th,td{border:1px solid #ddd;padding:.25em .6em;
text-align:right;vertical-align:top}th{background:#f3f3f3}td.l,th.l{text-align:left}
td.msg{text-align:left;max-width:40em;font-size:.85em;color:#555;word-break:break-word}
.warn{color:#b42318;font-weight:bold}.correct{color:#1a7f37}.bad{color:#b42318}.note{color:#777;font-style:italic}.meta td{text-align:left}
img{max-width:100%;margin:.5em 0}.grid{display:flex;flex-wrap:wrap;gap:1em}.up{color:#1a7f37}.down{color:#b42318}
"""


def run_metrics(run: RunRecords) -> dict[str, Any]:
    """compute_metrics over a run's records, every selected problem counted (see RunRecords.coverage).

    Problems the run selected but holds no result for count as failures (status ``no_result``);
    ``metrics["coverage"]`` says how many have results and whether the run is complete.
    """
    metrics = compute_metrics(run.scored_results(), backend=run.backend, attempts=run.attempts)
    metrics["coverage"] = run.coverage().to_dict()
    return metrics


def _coverage_note(metrics: dict[str, Any]) -> str:
    note = (metrics.get("coverage") or {}).get("note")
    return f'<p class="warn">{_e(note)}</p>' if note else ""


# ---------------------------------------------------------------- plots


def _figure(width: float = 7.0, height: float = 3.6) -> Any:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=100)
    FigureCanvasAgg(fig)
    return fig


def _png(fig: Any, alt: str) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", bbox_inches="tight", metadata={"Software": None})
    data = base64.b64encode(buf.getvalue()).decode("ascii")
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{data}">'


def _legend_below(ax: Any, n: int) -> None:
    ax.legend(fontsize=8, ncol=min(n, 4), loc="upper center", bbox_to_anchor=(0.5, -0.18), frameon=False)


def _x_ticks(ax: Any, axis: str = "x") -> None:
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    target = ax.xaxis if axis == "x" else ax.yaxis
    target.set_major_locator(LogLocator(base=2.0))
    target.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}x"))
    target.set_minor_formatter(NullFormatter())


def _bars(
    groups: dict[str, dict[str, Any]], keys: Sequence[str], title: str, labels: Sequence[str] | None = None
) -> str:
    """Grouped bars (percent) of rate metrics per group."""
    names = list(groups)
    fig = _figure(max(6.0, 0.9 * len(names) + 3.0))
    ax = fig.add_subplot(1, 1, 1)
    width = 0.8 / max(len(keys), 1)
    for i, key in enumerate(keys):
        values = [100.0 * (groups[g].get(key) or 0.0) for g in names]
        xs = [j + (i - (len(keys) - 1) / 2) * width for j in range(len(names))]
        ax.bar(
            xs, values, width=width, label=(labels[i] if labels else _RATE_LABELS.get(key, key)), color=_COLORS[i % 6]
        )
    ax.set_xticks(range(len(names)))
    ax.set_xticklabels(names, rotation=30 if len(names) > 5 else 0, ha="right" if len(names) > 5 else "center")
    ax.set_ylim(0, 105)
    ax.set_ylabel("% of problems")
    ax.set_title(title)
    _legend_below(ax, len(keys))
    ax.grid(axis="y", alpha=0.3)
    return _png(fig, title)


def _speedup_hist(rows: Sequence[dict[str, Any]], title: str) -> str | None:
    series = [
        ("vs eager", [r["speedup_eager"] for r in rows if r.get("speedup_eager")]),
        ("vs torch.compile", [r["speedup_compile"] for r in rows if r.get("speedup_compile")]),
    ]
    series = [(label, vals) for label, vals in series if vals]
    if not series:
        return None
    fig = _figure()
    ax = fig.add_subplot(1, 1, 1)
    lo = min(min(v) for _, v in series)
    hi = max(max(v) for _, v in series)
    lo, hi = min(lo, 0.5), max(hi, 2.0)
    edges = [lo * (hi / lo) ** (i / 24) for i in range(25)]
    for i, (label, vals) in enumerate(series):
        ax.hist(vals, bins=edges, alpha=0.6, label=f"{label} (n={len(vals)})", color=_COLORS[i])
    from matplotlib.ticker import MaxNLocator

    ax.set_xscale("log")
    _x_ticks(ax)
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.axvline(1.0, color="#333", linestyle="--", linewidth=1)
    ax.set_xlabel("speedup (log scale; dashed line: as fast as the reference)")
    ax.set_ylabel("correct problems")
    ax.set_title(title)
    ax.legend(fontsize=8)
    return _png(fig, title)


def _round_series(run: RunRecords) -> tuple[list[int], list[float]]:
    xs, ys = [], []
    total_default = len(run.results) or run.header.get("problems") or 0
    for i, rec in enumerate(run.rounds, 1):
        solved = rec.get("solved", rec.get("feasible", rec.get("correct")))
        total = rec.get("total") or rec.get("tasks") or total_default
        if solved is None or not total:
            continue
        xs.append(int(rec.get("round", i)))
        ys.append(100.0 * float(solved) / float(total))
    return xs, ys


def _rounds_plot(runs: Sequence[RunRecords]) -> str | None:
    series = [(run.name, *_round_series(run)) for run in runs if run.rounds]
    series = [s for s in series if s[1]]
    if not series:
        return None
    fig = _figure()
    ax = fig.add_subplot(1, 1, 1)
    for i, (name, xs, ys) in enumerate(series):
        ax.plot(xs, ys, marker="o", markersize=3, label=name, color=_COLORS[i % 6])
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("round")
    ax.set_ylabel("% of tasks with a feasible kernel")
    ax.set_ylim(0, 105)
    ax.set_title("correctness over rounds")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return _png(fig, "correctness over rounds")


def _speedup_scatter(a: dict[str, Any], b: dict[str, Any], names: tuple[str, str]) -> str | None:
    sa = {r["problem_id"]: r["speedup_eager"] for r in a["problems"] if r.get("speedup_eager")}
    sb = {r["problem_id"]: r["speedup_eager"] for r in b["problems"] if r.get("speedup_eager")}
    common = sorted(set(sa) & set(sb))
    if not common:
        return None
    fig = _figure(5.0, 5.0)
    ax = fig.add_subplot(1, 1, 1)
    xs, ys = [sa[k] for k in common], [sb[k] for k in common]
    ax.scatter(xs, ys, s=14, color=_COLORS[0])
    lo, hi = min(xs + ys + [0.5]), max(xs + ys + [2.0])
    ax.plot([lo, hi], [lo, hi], color="#333", linestyle="--", linewidth=1)
    ax.set_xscale("log")
    ax.set_yscale("log")
    _x_ticks(ax, "x")
    _x_ticks(ax, "y")
    ax.set_xlabel(f"speedup vs eager: {names[0]}")
    ax.set_ylabel(f"speedup vs eager: {names[1]}")
    ax.set_title("per-problem speedup (problems correct in both)")
    return _png(fig, "per-problem speedup comparison")


# ---------------------------------------------------------------- HTML pieces


def _e(value: Any) -> str:
    return html.escape(str(value))


def _note(text: str) -> str:
    return f'<p class="note">{_e(text)}</p>'


def _metric_columns(measured: bool) -> list[tuple[str, str]]:
    cols = [("compile_rate", "compiled"), ("correctness", "correct")]
    if measured:
        cols += [(fast_key(p), f"fast_{p:g}") for p in P_VALUES if p > 0]
        cols += [("speedup_eager", "speedup vs eager"), ("speedup_compile", "speedup vs compile")]
    return cols


def _metrics_table(groups: dict[str, dict[str, Any]], first: str, measured: bool, within: bool) -> str:
    cols = _metric_columns(measured)
    head = f'<th class="l">{_e(first)}</th><th>n</th>' + "".join(f"<th>{_e(c)}</th>" for _, c in cols)
    if not measured:
        head += "<th>fast_p, speedups</th>"
    if within:
        head += "<th>within-task speedup</th>"
    body = []
    for name, block in groups.items():
        cells = f'<td class="l">{_e(name)}</td><td>{block["n"]}</td>'
        cells += "".join(f"<td>{_e(format_value(block, k))}</td>" for k, _ in cols)
        if not measured:
            cells += f'<td class="note">{_e(NOT_MEASURED_TEXT)}</td>'
        if within:
            cells += f"<td>{_e(format_value(block, 'within_task_speedup'))}</td>"
        body.append(f"<tr>{cells}</tr>")
    return f"<table><tr>{head}</tr>{''.join(body)}</table>"


def _statuses(block: dict[str, Any]) -> str:
    return ", ".join(f"{_e(k)}: {v}" for k, v in block["statuses"].items())


_VERIFY_SHOWN = ("backend", "trials", "policy", "atol", "rtol", "fit", "seed", "timeout_s")


def _settings_text(settings: dict[str, Any]) -> str:
    """The settings a reader compares runs by, as "name=value" pairs.

    Solutions runs (and agent runs written before their settings were nested) record the verifier
    settings; agent runs record Agent.run_config(): the AgentSettings under "settings", the proposer.
    read_run checks that a header's settings are an object; anything else shows nothing.
    """
    if not isinstance(settings, dict):
        return ""
    agent = settings.get("settings")
    if not isinstance(agent, dict):
        return ", ".join(f"{k}={settings[k]}" for k in _VERIFY_SHOWN if k in settings)

    def table(name: str) -> dict[str, Any]:
        value = agent.get(name)
        return value if isinstance(value, dict) else {}

    llm, verify = table("llm"), table("verify")
    model = ("model", llm["model"]) if llm.get("model") else ("proposer", settings.get("proposer"))
    pairs = [
        model,
        ("budget", agent.get("budget")),
        ("retrieval", table("retrieval").get("mode")),
        ("seed", agent.get("seed")),
        ("executor", agent.get("executor")),
        ("workers", agent.get("workers")),
        *((k, verify.get(k)) for k in ("backend", "policy", "trials", "timeout_s")),
    ]
    return ", ".join(f"{k}={v}" for k, v in pairs if v is not None and v != "")


def _header_table(run: RunRecords) -> str:
    h = run.header
    versions = ", ".join(f"{k} {v}" for k, v in (h.get("versions") or {}).items() if v)
    shown = _settings_text(h.get("settings") or {})
    rows = [
        ("run", str(run.run_dir)),
        ("mode", run.mode),
        ("suite", h.get("suite", "")),
        ("backend", run.backend),
        ("device", h.get("device", "")),
        ("created", h.get("created", "")),
        ("results", _results_text(run)),
        ("versions", versions),
        ("settings", shown),
    ]
    for key in ("model", "rounds", "memory", "solutions"):
        if h.get(key) is not None:
            rows.append((key, h[key]))
    return (
        '<table class="meta">'
        + "".join(f"<tr><th class='l'>{_e(k)}</th><td>{_e(v)}</td></tr>" for k, v in rows)
        + "</table>"
    )


def _results_text(run: RunRecords) -> str:
    coverage = run.coverage()
    text = f"{coverage.with_results} of {coverage.total} problems"
    return text + ("" if coverage.complete else " (incomplete)")


def _fmt_speed(value: Any, measured: bool) -> str:
    if not measured:
        return "-"
    return f"{value:.2f}x" if isinstance(value, (int, float)) and value else "-"


def _problems_table(metrics: dict[str, Any], measured: bool) -> str:
    head = "<tr><th class='l'>problem</th><th>level</th><th class='l'>category</th><th class='l'>status</th>"
    if measured:
        head += "<th>speedup vs eager</th><th>speedup vs compile</th><th>within-task</th>"
    head += "<th class='l'>message</th></tr>"
    body = []
    for r in metrics["problems"]:
        cls = "correct" if r["correct"] else "bad"
        cells = (
            f"<td class='l'>{_e(r['problem_id'])}</td><td>{_e(r['level'] if r['level'] is not None else '-')}</td>"
            f"<td class='l'>{_e(r['category'])}</td><td class='l {cls}'>{_e(r['status'])}"
            f"{' (flagged)' if r['flagged'] else ''}</td>"
        )
        if measured:
            cells += "".join(
                f"<td>{_fmt_speed(r[k], True)}</td>"
                for k in ("speedup_eager", "speedup_compile", "within_task_speedup")
            )
        msg = r["message"] if not r["correct"] else ""
        cells += f"<td class='msg'>{_e(msg[:300])}</td>"
        body.append(f"<tr>{cells}</tr>")
    return f"<table>{head}{''.join(body)}</table>"


def _page(title: str, body: str) -> str:
    return (
        "<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
        f"<title>{_e(title)}</title><style>{_CSS}</style></head><body>{body}</body></html>\n"
    )


def _single(run: RunRecords) -> str:
    m = run_metrics(run)
    measured = m["speed_measured"]
    overall = m["overall"]
    within = overall.get("within_task_speedup") is not None
    parts = [f"<h1>EvoKernel bench report: {_e(run.name)}</h1>", _coverage_note(m), _header_table(run)]
    parts.append("<h2>Overall</h2>")
    parts.append(_metrics_table({"all": overall}, "", measured, within))
    parts.append(f"<p>statuses: {_statuses(overall)}</p>")
    if not measured:
        parts.append(_note(f"Speed: {NOT_MEASURED_TEXT}; the interpreter proves correctness only."))
    elif overall["flagged"]:
        parts.append(_note(f"{overall['flagged']} result(s) flagged for review (speedup above the flag threshold)."))
    rate_keys = list(_RATE_KEYS if measured else _RATE_KEYS[:2])
    what = "correctness and fast_p" if measured else "compile rate and correctness"
    levels = {f"level {k}": v for k, v in m["levels"].items()}
    parts.append("<h2>By level</h2>")
    parts.append(_metrics_table(levels, "level", measured, within))
    parts.append(_bars(levels, rate_keys, f"{what} by level"))
    parts.append("<h2>By category</h2>")
    parts.append(_metrics_table(m["categories"], "category", measured, within))
    parts.append(_bars(m["categories"], rate_keys, f"{what} by category"))
    parts.append("<h2>Speedup distribution</h2>")
    if not measured:
        parts.append(_note(f"Speedup distribution: {NOT_MEASURED_TEXT}."))
    else:
        img = _speedup_hist(m["problems"], "speedup of correct kernels")
        parts.append(img or _note("No correct problem was timed."))
    if run.rounds or run.mode == "agent":
        parts.append("<h2>Agent run</h2>")
        img = _rounds_plot([run])
        parts.append(img or _note("No round records in this run."))
        if run.attempts:
            feasible = sum(1 for a in run.attempts if a.get("feasible"))
            parts.append(f"<p>{len(run.attempts)} attempts, {feasible} feasible.</p>")
    parts.append("<h2>Problems</h2>")
    parts.append(_problems_table(m, measured))
    return _page(f"EvoKernel report: {run.name}", "\n".join(parts))


def _delta(a: Any, b: Any, percent: bool) -> str:
    if not isinstance(a, (int, float)) or not isinstance(b, (int, float)):
        return "-"
    d = (b - a) * (100.0 if percent else 1.0)
    if abs(d) < 1e-12:
        return "0"
    cls = "up" if d > 0 else "down"
    unit = " pp" if percent else "x"
    return f"<span class='{cls}'>{d:+.1f}{unit}</span>" if percent else f"<span class='{cls}'>{d:+.2f}{unit}</span>"


def _compare_table(ma: dict[str, Any], mb: dict[str, Any], names: tuple[str, str]) -> str:
    measured = ma["speed_measured"] or mb["speed_measured"]
    keys = ["n"] + [k for k, _ in _metric_columns(measured)] + ["within_task_speedup"]
    groups: list[tuple[str, dict[str, Any] | None, dict[str, Any] | None]] = [("all", ma["overall"], mb["overall"])]
    for lvl in sorted(
        set(ma["levels"]) | set(mb["levels"]), key=lambda k: (not k.isdigit(), int(k) if k.isdigit() else 0, k)
    ):
        groups.append((f"level {lvl}", ma["levels"].get(lvl), mb["levels"].get(lvl)))
    for cat in sorted(set(ma["categories"]) | set(mb["categories"])):
        groups.append((cat, ma["categories"].get(cat), mb["categories"].get(cat)))
    head = (
        "<tr><th class='l'>group</th><th class='l'>metric</th>"
        + f"<th>{_e(names[0])}</th><th>{_e(names[1])}</th><th>change</th></tr>"
    )
    body = []
    for label, a, b in groups:
        for i, key in enumerate(keys):
            va = "-" if a is None else (str(a["n"]) if key == "n" else format_value(a, key))
            vb = "-" if b is None else (str(b["n"]) if key == "n" else format_value(b, key))
            percent = key in ("compile_rate", "correctness") or key.startswith("fast_")
            delta = _delta(a.get(key) if a else None, b.get(key) if b else None, percent) if key != "n" else ""
            first = f"<td class='l' rowspan='{len(keys)}'>{_e(label)}</td>" if i == 0 else ""
            metric = _e(_RATE_LABELS.get(key, key))
            body.append(
                f"<tr>{first}<td class='l'>{metric}</td><td>{_e(va)}</td><td>{_e(vb)}</td><td>{delta}</td></tr>"
            )
    return f"<table>{head}{''.join(body)}</table>"


def _change(a: dict[str, Any] | None, b: dict[str, Any] | None) -> tuple[int, str]:
    if a is None or b is None:
        return 1, "only in " + ("B" if a is None else "A")
    if a["correct"] != b["correct"]:
        return 0, "fixed" if b["correct"] else "broken"
    if a["status"] != b["status"]:
        return 2, "status changed"
    sa, sb = a.get("speedup_eager"), b.get("speedup_eager")
    if sa and sb and not math.isclose(sa, sb, rel_tol=0.05):
        return 3, "faster" if sb > sa else "slower"
    return 9, "same"


def _compare_problems(ma: dict[str, Any], mb: dict[str, Any], names: tuple[str, str]) -> str:
    ra = {r["problem_id"]: r for r in ma["problems"]}
    rb = {r["problem_id"]: r for r in mb["problems"]}
    ids = list(dict.fromkeys([*ra, *rb]))
    rows = sorted(((_change(ra.get(i), rb.get(i)), i) for i in ids), key=lambda t: t[0][0])
    changed = sum(1 for (rank, _), _ in rows if rank != 9)
    head = (
        f"<tr><th class='l'>problem</th><th class='l'>status {_e(names[0])}</th>"
        f"<th class='l'>status {_e(names[1])}</th>"
        f"<th>speedup {_e(names[0])}</th><th>speedup {_e(names[1])}</th><th class='l'>change</th></tr>"
    )
    body = []
    for (_, label), pid in rows:
        a, b = ra.get(pid), rb.get(pid)
        cls = {"fixed": "up", "faster": "up", "broken": "down", "slower": "down"}.get(label, "")
        body.append(
            f"<tr><td class='l'>{_e(pid)}</td><td class='l'>{_e(a['status'] if a else '-')}</td>"
            f"<td class='l'>{_e(b['status'] if b else '-')}</td>"
            f"<td>{_fmt_speed(a.get('speedup_eager') if a else None, ma['speed_measured'])}</td>"
            f"<td>{_fmt_speed(b.get('speedup_eager') if b else None, mb['speed_measured'])}</td>"
            f"<td class='l {cls}'>{_e(label)}</td></tr>"
        )
    return f"<p>{changed} of {len(ids)} problems differ.</p><table>{head}{''.join(body)}</table>"


def _compare(a: RunRecords, b: RunRecords) -> str:
    ma, mb = run_metrics(a), run_metrics(b)
    names = (a.name, b.name) if a.name != b.name else (f"A: {a.name}", f"B: {b.name}")
    measured = ma["speed_measured"] and mb["speed_measured"]
    parts = [f"<h1>EvoKernel bench comparison: {_e(names[0])} vs {_e(names[1])}</h1>"]
    parts.append(
        "<div class='grid'>"
        + "".join(
            f"<div><h2>{_e(n)}</h2>{_coverage_note(m)}{_header_table(r)}</div>"
            for n, r, m in zip(names, (a, b), (ma, mb))
        )
        + "</div>"
    )
    parts.append("<h2>Aggregates</h2>")
    if not measured:
        parts.append(_note(f"Speed of a CPU run: {NOT_MEASURED_TEXT}."))
    parts.append(_compare_table(ma, mb, names))
    keys = ["correctness", *([fast_key(1.0)] if measured else [])]
    for title, ga, gb in (
        (
            "by level",
            {f"level {k}": v for k, v in ma["levels"].items()},
            {f"level {k}": v for k, v in mb["levels"].items()},
        ),
        ("by category", ma["categories"], mb["categories"]),
    ):
        merged = {}
        for g in list(dict.fromkeys([*ga, *gb])):
            block = {}
            for key in keys:
                block[f"{key}@A"] = (ga.get(g) or {}).get(key)
                block[f"{key}@B"] = (gb.get(g) or {}).get(key)
            merged[g] = block
        bar_keys = [f"{key}@{side}" for key in keys for side in "AB"]
        labels = [f"{_RATE_LABELS[key]} {names[0 if side == 'A' else 1]}" for key in keys for side in "AB"]
        parts.append(_bars(merged, bar_keys, f"{' and '.join(_RATE_LABELS[k] for k in keys)} {title}", labels))
    if measured:
        img = _speedup_scatter(ma, mb, names)
        if img:
            parts.append(img)
    rounds = _rounds_plot([a, b])
    if rounds:
        parts.append("<h2>Agent runs</h2>" + rounds)
    parts.append("<h2>Per-problem differences</h2>")
    parts.append(_compare_problems(ma, mb, names))
    return _page(f"EvoKernel comparison: {names[0]} vs {names[1]}", "\n".join(parts))


def render_html(runs: Sequence[RunRecords | str | Path]) -> str:
    """The report of one run, or the comparison of two, as one HTML string."""
    loaded = [r if isinstance(r, RunRecords) else read_run(r) for r in runs]
    if len(loaded) == 1:
        return _single(loaded[0])
    if len(loaded) == 2:
        return _compare(loaded[0], loaded[1])
    raise UserError("a report covers one run, or two runs to compare")


def write_report(runs: Sequence[RunRecords | str | Path], out: str | Path) -> Path:
    """Write the HTML report to ``out`` and return its path."""
    text = render_html(runs)
    path = Path(out)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise UserError(f"{path}: cannot write the report ({exc}); pass another -o") from exc
    return path
