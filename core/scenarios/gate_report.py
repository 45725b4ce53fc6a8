"""A gate run's report as one self-contained HTML file (images inlined as data URIs), to
attach to a change request: the verdict and each rule, the win rate with its interval and the
ties, metric deltas, failure rates, every photo with its note, its outputs from both versions
and the judgments on them, and who reviewed."""

from __future__ import annotations

import base64
import html
from collections.abc import Callable
from typing import Any

from core.data.images import make_thumbnail
from core.insight.pairwise import Interval
from core.scenarios.verdict import GateResult, MetricDelta, PhotoResult

IMAGE_PX = 320
STATUS_COLOURS = {"pass": "#1a7f37", "fail": "#cf222e", "incomplete": "#9a6700"}
CSS = """
body{font:14px/1.45 system-ui,sans-serif;margin:2rem auto;max-width:1100px;color:#1f2328}
h1{font-size:1.5rem}h2{font-size:1.2rem;margin-top:2rem;border-bottom:1px solid #d0d7de}
table{border-collapse:collapse;margin:.5rem 0}td,th{border:1px solid #d0d7de;padding:.25rem .5rem;
text-align:left;vertical-align:top}th{background:#f6f8fa}.status{color:#fff;padding:.2rem .6rem;
border-radius:.3rem;font-weight:600}.pairs{display:flex;flex-wrap:wrap;gap:.75rem}
figure{margin:0;border:1px solid #d0d7de;padding:.4rem;border-radius:.3rem}
figcaption{font-size:12px;color:#57606a;max-width:""" + str(IMAGE_PX) + """px}
img{max-width:""" + str(IMAGE_PX) + """px;display:block}.ok{color:#1a7f37}.bad{color:#cf222e}
.unknown{color:#9a6700}.note{font-style:italic}
"""


def _e(value: Any) -> str:
    return html.escape(str(value))


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{value:.0%}"


def _num(value: float | None, fmt: str = ".4g") -> str:
    return "–" if value is None else format(value, fmt)


def _interval(i: Interval, fmt: Callable[[float | None], str] = _pct) -> str:
    if i.estimate is None:
        return "no data"
    ci = "" if i.low is None else f" (95% CI {fmt(i.low)} – {fmt(i.high)}, {i.method})"
    return f"{fmt(i.estimate)}{ci}, n = {i.n}"


def _image(load: Callable[[str], bytes], key: str | None, caption: str) -> str:
    if not key:
        return f"<figure><figcaption>{_e(caption)}: no image</figcaption></figure>"
    try:
        data, content_type = make_thumbnail(load(key), max_px=IMAGE_PX)
    except Exception:  # noqa: BLE001 - a missing file must not stop the report
        return f"<figure><figcaption>{_e(caption)}: stored image unreadable</figcaption></figure>"
    uri = f"data:{content_type};base64,{base64.b64encode(data).decode()}"
    return f'<figure><img src="{uri}" alt="{_e(caption)}"><figcaption>{_e(caption)}</figcaption></figure>'


def _metrics_table(metrics: dict[str, MetricDelta]) -> str:
    rows = "".join(
        f"<tr><td>{_e(name)}</td><td>{_num(m.candidate_mean)}</td><td>{_num(m.production_mean)}</td>"
        f"<td>{_interval(m.delta, lambda v: _num(v, '+.4g'))}</td></tr>"
        for name, m in metrics.items())
    return ("<table><tr><th>metric</th><th>candidate mean</th><th>production mean</th>"
            f"<th>candidate − production (paired)</th></tr>{rows}</table>")


def _photo(photo: PhotoResult, load: Callable[[str], bytes]) -> str:
    pref = photo.preference
    parts = [f"<h3>Photo {photo.image_id} {_e(photo.label)}</h3>"]
    if photo.note:
        parts.append(f'<p class="note">{_e(photo.note)}</p>')
    parts.append(f"<p>Candidate wins {pref.wins}, production wins {pref.losses}, ties {pref.ties}; "
                 f"win rate {_interval(pref.win_rate)}. Failures: candidate "
                 f"{_interval(photo.failures.candidate)}, production "
                 f"{_interval(photo.failures.production)}.</p>")
    parts.append(_metrics_table(photo.metrics))
    figures = [_image(load, photo.input_key, "input photo")]
    for pair in photo.pairs:
        said = ", ".join(f"{r}: {c}" for r, c in pair.judgments) or "not judged"
        figures.append(_image(load, pair.candidate_output,
                              f"candidate, seed {pair.seed} ({pair.candidate_state}) — {said}"))
        figures.append(_image(load, pair.production_output,
                              f"production, seed {pair.seed} ({pair.production_state})"))
    parts.append(f'<div class="pairs">{"".join(figures)}</div>')
    return "".join(parts)


def render_html(result: GateResult, load: Callable[[str], bytes]) -> str:
    """The whole report; ``load`` reads a stored image by key (``MediaStore.get``)."""
    colour = STATUS_COLOURS.get(result.status, "#57606a")
    pref = result.preference
    checks = "".join(
        f"<tr><td>{_e(c.rule)}</td><td class=\"{'ok' if c.passed else 'unknown' if c.passed is None else 'bad'}\">"
        f"{'pass' if c.passed else 'not yet known' if c.passed is None else 'FAIL'}</td>"
        f"<td>{_e(c.detail)}</td></tr>" for c in result.checks)
    reviewers = "".join(
        f"<tr><td>{_e(name)}</td><td>{r['judgments']}</td><td>{_num(r['median_seconds'], '.1f')}</td>"
        f"<td>{_e(r['last_at'] or '–')}</td></tr>" for name, r in result.reviewers.items()
    ) or "<tr><td colspan=4>nobody yet</td></tr>"
    bt = ""
    if result.bradley_terry:
        rows = "".join(f"<tr><td>v{v}</td><td>{s:+.3f}</td></tr>" for v, s in
                       sorted(result.bradley_terry.items(), key=lambda kv: -kv[1]))
        bt = ("<h2>Bradley–Terry strength of every version compared</h2><table><tr><th>version"
              f"</th><th>log-strength</th></tr>{rows}</table>")
    f = result.failures
    emulated = (" <strong>Results come from the emulator: no real images, no real cost.</strong>"
                if result.endpoint == "emulator" else "")
    return f"""<!doctype html><html lang="en"><head><meta charset="utf-8">
<title>Gate run {result.gate_run_id}: {_e(result.scenario_name)} v{result.candidate_version} vs v{result.production_version}</title>
<style>{CSS}</style></head><body>
<h1>Gate run {result.gate_run_id}: {_e(result.scenario_name)} — candidate v{result.candidate_version} against production v{result.production_version}</h1>
<p><span class="status" style="background:{colour}">{_e(result.status.upper())}</span>
Test set <strong>{_e(result.test_set)}</strong> (version {result.test_set_version}), seeds {_e(', '.join(map(str, result.seeds)))},
{result.reviewers_per_pair} reviewer(s) per pair; started by {_e(result.created_by)} at {_e(result.created_at)};
sweeps {_e(result.sweeps['candidate'])} (candidate) and {_e(result.sweeps['production'])} (production).{emulated}</p>
<ul>{''.join(f'<li>{_e(r)}</li>' for r in result.reasons) or '<li>every rule passed</li>'}</ul>
<h2>Pass rules</h2><table><tr><th>rule</th><th>result</th><th>evidence</th></tr>{checks}</table>
<h2>Blind preference</h2>
<p>Candidate wins {pref.wins}, production wins {pref.losses}, ties {pref.ties} (pairs; a pair's outcome is its reviewers' mean).
Candidate win rate (ties left out): <strong>{_interval(pref.win_rate)}</strong>.
Judgments: {pref.judgments.get('candidate', 0)} for the candidate, {pref.judgments.get('production', 0)} for production, {pref.judgments.get('same', 0)} "same".</p>
<p>Pairs: {result.pairs_total}, reviewable {result.pairs_reviewable}, with every reviewer {result.pairs_complete}; cells still running: {result.cells_unfinished}.</p>
<h2>Metric deltas</h2>{_metrics_table(result.metrics)}
<h2>Failure rate</h2><table><tr><th></th><th>rate</th><th>safety filter</th></tr>
<tr><td>candidate</td><td>{_interval(f.candidate)}</td><td>{f.candidate_safety}</td></tr>
<tr><td>production</td><td>{_interval(f.production)}</td><td>{f.production_safety}</td></tr>
<tr><td>difference</td><td>{_interval(f.difference, lambda v: '–' if v is None else f'{v:+.0%}')}</td><td></td></tr></table>
<p>Spent: candidate ${result.cost_usd['candidate']:.4f}, production ${result.cost_usd['production']:.4f} (reused outputs cost nothing).</p>
{bt}
<h2>Who reviewed</h2><table><tr><th>reviewer</th><th>judgments</th><th>median seconds</th><th>last</th></tr>{reviewers}</table>
<h2>Per photo</h2>{''.join(_photo(p, load) for p in result.per_photo)}
</body></html>
"""
