"""The report: a self-contained HTML page (figures inline, no CDN) with its PNGs, or a Markdown summary.

The page is one file that opens offline: the PNGs are embedded as ``data:`` URIs (and also
written next to it, for slides and chat), the table sorts with a few lines of inline script, and
nothing is fetched from anywhere. Every text that comes from the experiment is escaped.
"""

from __future__ import annotations

import base64
import html
import math
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path

from kubetune.api import ParamValue, TrialPhase, now_rfc3339
from kubetune.lifecycle import format_duration
from kubetune.results import figures
from kubetune.results.history import History, Row, maximize, rows
from kubetune.results.importance import MIN_TRIALS, Importance, parameter_importance

#: (file stem, section title, what the figure shows) in page order.
SECTIONS = (
    ("trace", "Search history", "Each trial's objective by index; failures on the bottom edge, early-stopped and "
                                "running trials at their last reported value; the line is the best so far."),
    ("importance", "Parameter importance", ""),
    ("slices", "Parameters", "The objective against each parameter; colour is the trial index (late trials are "
                             "yellow), the star the best trial."),
    ("curves", "Learning curves", "The objective at each step the trials reported."),
    ("pareto", "Pareto front", "Every succeeded trial on the first two objectives; the front joins the trials no "
                               "other trial beats on every objective."),
)


def _number(value: float | None) -> str:
    if value is None or not math.isfinite(value):
        return ""
    return f"{value:.6g}"


def _param(value: ParamValue) -> str:
    return f"{value:.6g}" if isinstance(value, float) else str(value)


def _duration(seconds: float | None) -> str:
    return "" if seconds is None else format_duration(round(seconds))


def _condition(history: History) -> str:
    status = history.status
    condition = next((c for c in status.conditions if c.type == status.phase.value), None)
    return f"{condition.reason}: {condition.message}" if condition else ""


def _metric_names(history: History) -> list[str]:
    declared = [history.spec.objective.metric, *history.spec.objective.additional_metrics]
    return declared[1:]


def _ranked(history: History, table: Sequence[Row]) -> list[Row]:
    """Succeeded trials, best first."""
    done = [r for r in table if r.phase is TrialPhase.SUCCEEDED and r.value is not None and r.feasible]
    return sorted(done, key=lambda r: (-(r.value or 0.0) if maximize(history) else (r.value or 0.0), r.index))


def importance_note(importance: Importance | None) -> str:
    if importance is None:
        return f"Not enough trials to estimate importance yet (it needs {MIN_TRIALS} with a value)."
    parts = [f"{importance.n_trials - importance.n_partial - importance.n_failed} succeeded"]
    if importance.n_partial:
        parts.append(f"{importance.n_partial} early-stopped (at their last value)")
    if importance.n_failed:
        parts.append(f"{importance.n_failed} failed (at the worst value)")
    note = (f"{importance.method}, fitted to {', '.join(parts)} trials: the share of the objective's variance "
            f"each parameter explains on its own; interactions explain the other "
            f"{max(0.0, 1 - importance.main_effects):.0%}.")
    if importance.conditional:
        note += (" Conditional parameters: an inactive one is held at a fixed value, so a share can include the "
                 "effect of the choice that activates it.")
    if importance.rough:
        note += (f" Rough: {importance.n_trials} trials for {len(importance.values)} parameters (two per "
                 "parameter or more make it steadier).")
    return note


# --- Markdown

def markdown_summary(history: History, *, top: int = 10) -> str:
    """A text summary for terminals and CI logs (``kubetune report --format md``)."""
    table = rows(history)
    status = history.status
    counts = status.trials
    objective = history.spec.objective
    lines = [f"# Experiment {history.name}", "",
             f"- source: {history.source}",
             f"- phase: **{status.phase.value}**" + (f" ({_condition(history)})" if _condition(history) else ""),
             f"- trials: {counts.finished}/{history.spec.max_trials} finished — {counts.succeeded} succeeded, "
             f"{counts.failed} failed, {counts.early_stopped} early-stopped, {counts.killed} killed, "
             f"{counts.active} running" + (f"; {counts.infeasible} of the succeeded infeasible (a constraint broken)"
                                           if counts.infeasible else ""),
             f"- objective: {objective.metric} ({objective.goal.value})"
             + (f", target {objective.target:g}" if objective.target is not None else ""),
             f"- trial time: {_duration(status.trial_seconds)}"]
    best = status.best_trial
    if best:
        params = ", ".join(f"{k}={_param(v)}" for k, v in best.params.items())
        lines.append(f"- best: **{best.name}** {objective.metric}={best.objective_value:.6g} ({params})")
    ranked = _ranked(history, table)
    names = [p.name for p in history.spec.parameters]
    if ranked:
        kind = "feasible succeeded" if history.spec.objective.constraints else "succeeded"
        lines += ["", f"## Best {min(top, len(ranked))} of {len(ranked)} {kind} trials", "",
                  "| trial | " + objective.metric + " | " + " | ".join(names) + " |",
                  "| --- | ---: | " + " | ".join("---" for _ in names) + " |"]
        for r in ranked[:top]:
            values = " | ".join(_param(v) if (v := r.trial.spec.params.get(n)) is not None else "–" for n in names)
            lines.append(f"| {r.name} | {_number(r.value)} | {values} |")
    if history.spec.objective.several:
        metrics = history.spec.objective.objective_metrics
        first = history.spec.objective
        front = sorted(history.status.pareto_front, key=lambda p: first.loss(p.values.get(first.metric, math.nan)))
        size = history.status.pareto_size or 0
        kept = f" (the {len(front)} the status keeps)" if len(front) < size else ""
        lines += ["", f"## Pareto front: {size} trials{kept}", "",
                  "| trial | " + " | ".join(metrics) + " |", "| --- | " + " | ".join("---:" for _ in metrics) + " |"]
        lines += [f"| {p.name} | " + " | ".join(_number(p.values.get(m)) for m in metrics) + " |" for p in front]
    importance = parameter_importance(history)
    lines += ["", "## Parameter importance", ""]
    if importance is None:
        lines.append(importance_note(None))
    else:
        lines += ["| parameter | importance | |", "| --- | ---: | --- |"]
        for name, value in sorted(importance.values.items(), key=lambda kv: -kv[1]):
            lines.append(f"| {name} | {value:.3f} | {'█' * round(value * 20)} |")
        lines += ["", importance_note(importance)]
    reasons = Counter(r.trial.status.reason.value for r in table
                      if r.phase is not TrialPhase.SUCCEEDED and r.trial.status.reason is not None)
    if reasons:
        lines += ["", "## Trials that did not succeed", "", "| reason | trials |", "| --- | ---: |"]
        lines += [f"| {reason} | {n} |" for reason, n in reasons.most_common()]
    return "\n".join(lines) + "\n"


# --- HTML

STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 2rem auto; max-width: 1180px;
       padding: 0 1rem; color: #1b1b1b; line-height: 1.45; }
h1 { margin-bottom: .2rem; } h2 { margin-top: 2.2rem; border-bottom: 1px solid #ddd; padding-bottom: .2rem; }
.meta { color: #555; } .phase { font-weight: 600; }
.Succeeded { color: #1a7f37; } .Failed { color: #cf222e; } .Running, .Pending { color: #2c7a2c; }
.Suspended, .EarlyStopped, .Killed { color: #9a6700; }
.cards { display: flex; flex-wrap: wrap; gap: .8rem; margin: 1rem 0; }
.card { border: 1px solid #ddd; border-radius: 6px; padding: .5rem .9rem; min-width: 7rem; }
.card b { display: block; font-size: 1.3rem; }
figure { margin: 0; } figure img { max-width: 100%; height: auto; border: 1px solid #eee; }
figcaption, .note { color: #555; font-size: .9rem; }
table { border-collapse: collapse; font-size: .85rem; width: 100%; }
th, td { border-bottom: 1px solid #eee; padding: .25rem .5rem; text-align: left; white-space: nowrap; }
th { cursor: pointer; position: sticky; top: 0; background: #f6f8fa; user-select: none; }
th[aria-sort="ascending"]::after { content: " ▲"; } th[aria-sort="descending"]::after { content: " ▼"; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
tr.best td { background: #fff8c5; }
td.msg { max-width: 30rem; overflow: hidden; text-overflow: ellipsis; color: #555; }
.tablewrap { max-height: 34rem; overflow: auto; border: 1px solid #ddd; }
"""

# Click a header to sort by it (again to reverse); numbers sort as numbers, empty cells last.
SCRIPT = """
document.querySelectorAll("table.sortable").forEach(function (table) {
  var heads = table.querySelectorAll("th");
  heads.forEach(function (th, column) {
    th.addEventListener("click", function () {
      var ascending = th.getAttribute("aria-sort") !== "ascending";
      heads.forEach(function (h) { h.removeAttribute("aria-sort"); });
      th.setAttribute("aria-sort", ascending ? "ascending" : "descending");
      var body = table.tBodies[0];
      var rows = Array.prototype.slice.call(body.rows);
      rows.sort(function (a, b) {
        var x = a.cells[column].getAttribute("data-sort"), y = b.cells[column].getAttribute("data-sort");
        if (x === "") return 1; if (y === "") return -1;
        var nx = Number(x), ny = Number(y), c;
        c = (!isNaN(nx) && !isNaN(ny)) ? nx - ny : x.localeCompare(y);
        return ascending ? c : -c;
      });
      rows.forEach(function (r) { body.appendChild(r); });
    });
  });
});
"""


def _cell(text: str, sort: str | float | int | None = None, css: str = "", *, title: bool = False) -> str:
    key = "" if sort is None or (isinstance(sort, float) and not math.isfinite(sort)) else str(sort)
    cls = f' class="{css}"' if css else ""
    hover = f' title="{html.escape(text)}"' if title and text else ""
    return f'<td{cls}{hover} data-sort="{html.escape(key)}">{html.escape(text)}</td>'


def trial_table(history: History, table: Sequence[Row]) -> str:
    names = [p.name for p in history.spec.parameters]
    metrics = _metric_names(history)
    best = history.status.best_trial.name if history.status.best_trial else None
    head = ["trial", "phase", history.spec.objective.metric, *names, *metrics, "steps", "time", "reason"]
    out = ['<div class="tablewrap"><table class="sortable" id="trials"><thead><tr>',
           "".join(f"<th>{html.escape(h)}</th>" for h in head), "</tr></thead><tbody>"]
    for r in table:
        status = r.trial.status
        value = _number(r.value) + (" (last)" if r.partial and r.value is not None else "")
        phase = r.phase.value if r.feasible else f"{r.phase.value} (infeasible)"
        cells = [_cell(r.name, r.index), _cell(phase, phase, r.phase.value),
                 _cell(value, r.value, "num")]
        for n in names:
            v = r.trial.spec.params.get(n)
            cells.append(_cell("" if v is None else _param(v), v if isinstance(v, int | float) else str(v or ""),
                               "num" if isinstance(v, int | float) else ""))
        for m in metrics:
            mv = status.metrics.get(m)
            cells.append(_cell(_number(mv), mv, "num"))
        cells.append(_cell("" if r.steps is None else str(r.steps), r.steps, "num"))
        cells.append(_cell(_duration(r.seconds), r.seconds, "num"))
        reason = "" if r.phase is TrialPhase.SUCCEEDED and r.feasible else " ".join(
            x for x in (status.reason.value if status.reason else "", status.message or "") if x)
        cells.append(_cell(reason, reason, "msg", title=True))
        css = ' class="best"' if r.name == best else ""
        out.append(f"<tr{css}>{''.join(cells)}</tr>")
    out.append("</tbody></table></div>")
    return "".join(out)


def _cards(history: History) -> str:
    counts = history.status.trials
    best = history.status.best_trial
    items = [("finished", f"{counts.finished}/{history.spec.max_trials}"), ("succeeded", str(counts.succeeded)),
             *([("infeasible", str(counts.infeasible))] if history.spec.objective.constraints else []),
             ("failed", str(counts.failed)), ("early-stopped", str(counts.early_stopped)),
             ("running", str(counts.active)), ("trial time", _duration(history.status.trial_seconds) or "0s")]
    if best:
        items.insert(0, (f"best {history.spec.objective.metric}", f"{best.objective_value:.6g}"))
    return '<div class="cards">' + "".join(
        f'<div class="card"><b>{html.escape(v)}</b>{html.escape(k)}</div>' for k, v in items) + "</div>"


def render_html(history: History, images: dict[str, bytes | None], importance: Importance | None) -> str:
    """The page, with ``images`` (stem → PNG bytes, None when there was nothing to draw) inline."""
    status = history.status
    objective = history.spec.objective
    best = status.best_trial
    title = f"kubetune report: {history.name}"
    parts = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
             '<meta name="viewport" content="width=device-width, initial-scale=1">',
             f"<title>{html.escape(title)}</title><style>{STYLE}</style></head><body>",
             f"<h1>{html.escape(history.name)}</h1>",
             f'<p class="meta">{html.escape(history.source)} · objective <b>{html.escape(objective.metric)}</b> '
             f"({html.escape(objective.goal.value)}) · algorithm {html.escape(history.spec.algorithm.name.value)} · "
             f"report made {html.escape(now_rfc3339())}</p>",
             f'<p>Phase <span class="phase {html.escape(status.phase.value)}">{html.escape(status.phase.value)}'
             f"</span>" + (f" — {html.escape(_condition(history))}" if _condition(history) else "") + "</p>",
             _cards(history)]
    if best:
        params = ", ".join(f"{k}={_param(v)}" for k, v in best.params.items())
        parts.append(f"<p>Best trial <b>{html.escape(best.name)}</b>: {html.escape(objective.metric)} = "
                     f"{best.objective_value:.6g} with {html.escape(params)}</p>")
    for stem, heading, caption in SECTIONS:
        if stem == "pareto" and not history.spec.objective.several:
            continue
        parts.append(f'<h2 id="{stem}">{html.escape(heading)}</h2>')
        if stem == "importance":
            caption = importance_note(importance)
        image = images.get(stem)
        if image is None:
            parts.append(f'<p class="note">{html.escape(_nothing(stem, importance))}</p>')
            continue
        data = base64.b64encode(image).decode("ascii")
        parts.append(f'<figure><img src="data:image/png;base64,{data}" alt="{html.escape(heading)}">'
                     f"<figcaption>{html.escape(caption)}</figcaption></figure>")
    parts += ['<h2 id="table">Trials</h2>', '<p class="note">Click a column to sort by it.</p>',
              trial_table(history, rows(history)), f"<script>{SCRIPT}</script></body></html>"]
    return "\n".join(parts) + "\n"


def _nothing(stem: str, importance: Importance | None) -> str:
    if stem == "importance":
        return importance_note(importance)
    if stem == "curves":
        return "No trial reported a learning curve of the objective (progress lines with two steps or more)."
    if stem == "pareto":
        return "No trial has reported every objective yet."
    return "No trial has an objective value yet."


def write_report(history: History, out_dir: Path) -> list[Path]:
    """Write ``<name>.html`` and one PNG per figure into ``out_dir``; return the paths, the page first."""
    importance = parameter_importance(history)
    draw: dict[str, Callable[[], bytes | None]] = {
        "trace": lambda: figures.trace(history),
        "importance": lambda: figures.importance_bars(history, importance),
        "slices": lambda: figures.slices(history),
        "curves": lambda: figures.learning_curves(history),
        "pareto": lambda: figures.pareto_front(history),
    }
    images = {stem: make() for stem, make in draw.items()}
    out_dir.mkdir(parents=True, exist_ok=True)
    page = out_dir / f"{history.name}.html"
    written = [page]
    for stem, image in images.items():
        if image is not None:
            path = out_dir / f"{history.name}-{stem}.png"
            path.write_bytes(image)
            written.append(path)
    page.write_text(render_html(history, images, importance), encoding="utf-8")
    return written
