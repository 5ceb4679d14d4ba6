"""The readiness report as text (terminal), JSON (machines) and one self-contained HTML file (people).

The HTML page loads nothing: styles are inline, there is no script, image, font or link to fetch, so it can be
attached to an onboarding request and opened anywhere. Every value is HTML-escaped.
"""

from __future__ import annotations

import json
from html import escape

from .core import AREAS, Report, Status, by_area

MARK = {Status.PASS: "PASS", Status.WARN: "WARN", Status.FAIL: "FAIL"}


def _verdict(report: Report) -> str:
    counts = ", ".join(f"{report.count(s)} {s.value}" for s in Status)
    return f"{'READY' if report.ready else 'NOT READY'} ({counts})"


def text(report: Report) -> str:
    lines = [f"EUCAIM readiness of {report.node} at {report.generated_at.isoformat(timespec='seconds')}"]
    for area, checks in by_area(report.checks).items():
        lines.append(f"\n{AREAS[area]}")
        for c in checks:
            lines.append(f"  [{MARK[c.status]}] {c.title}")
            lines.append(f"         {c.evidence}")
            if c.action:
                lines.append(f"         what to do: {c.action}")
    lines.append(f"\n{_verdict(report)}")
    return "\n".join(lines) + "\n"


def as_json(report: Report) -> str:
    return json.dumps(report.as_dict(), indent=2) + "\n"


_STYLE = """
body{font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:2rem auto;max-width:60rem;color:#1d232b;padding:0 1rem}
h1{font-size:1.5rem;margin:0 0 .25rem}h2{font-size:1.1rem;margin:1.75rem 0 .5rem;border-bottom:1px solid #d0d7de;padding-bottom:.25rem}
.meta{color:#57606a;margin:0 0 1rem}.verdict{font-weight:700;font-size:1.1rem;padding:.6rem .9rem;border-radius:6px;display:inline-block}
.verdict.ready{background:#dafbe1;color:#116329}.verdict.not-ready{background:#ffebe9;color:#a40e26}
table{border-collapse:collapse;width:100%;table-layout:fixed}th:nth-child(1){width:4.5rem}th:nth-child(2){width:17rem}td,th{text-align:left;vertical-align:top;padding:.45rem .5rem;border-bottom:1px solid #eaeef2}
th{font-size:.85rem;color:#57606a;font-weight:600}.status{font-weight:700;font-size:.8rem;border-radius:4px;padding:.1rem .45rem;white-space:nowrap}
.pass{background:#dafbe1;color:#116329}.warn{background:#fff8c5;color:#7d4e00}.fail{background:#ffebe9;color:#a40e26}
.evidence{font-family:ui-monospace,SFMono-Regular,Menlo,monospace;font-size:.82rem;word-break:break-word}.action{margin-top:.3rem;color:#57606a}
@media print{body{margin:0}}
"""


def html(report: Report) -> str:
    rows = []
    for area, checks in by_area(report.checks).items():
        rows.append(f'<h2 id="{escape(area)}">{escape(AREAS[area])}</h2>')
        rows.append('<table><thead><tr><th>Status</th><th>Check</th><th>Evidence and what to do</th></tr></thead><tbody>')
        for c in checks:
            action = f'<div class="action">What to do: {escape(c.action)}</div>' if c.action else ""
            rows.append(
                f'<tr class="check" data-check="{escape(c.id)}" data-status="{c.status.value}">'
                f'<td><span class="status {c.status.value}">{MARK[c.status]}</span></td>'
                f'<td>{escape(c.title)}</td><td><div class="evidence">{escape(c.evidence)}</div>{action}</td></tr>')
        rows.append("</tbody></table>")
    verdict_class = "ready" if report.ready else "not-ready"
    when = report.generated_at.isoformat(timespec="seconds")
    return (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        "<meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">"
        f"<title>EUCAIM readiness: {escape(report.node)}</title><style>{_STYLE}</style></head><body>"
        f"<h1>EUCAIM onboarding readiness</h1><p class=\"meta\">Node <strong>{escape(report.node)}</strong>, "
        f"checked {escape(when)} by <code>eucaim-node readiness</code>.</p>"
        f"<p class=\"verdict {verdict_class}\" id=\"verdict\">{escape(_verdict(report))}</p>"
        + "".join(rows) + "</body></html>\n"
    )


RENDERERS = {"text": text, "json": as_json, "html": html}
