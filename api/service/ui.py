"""The operator page (``GET /v1/ui``): policies, training jobs, bandit sessions and recent decisions, with small
server-rendered SVG charts. One self-contained HTML document: inline CSS, no script, nothing fetched from
elsewhere (the Content-Security-Policy forbids it); every value from the database is escaped."""

from __future__ import annotations

import html
import math
import time
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime

import sqlalchemy as sa

from api.service.db import Database, decisions, sessions
from api.service.metrics import JOB_TABLES

CSP = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src data:; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'"
)
HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
    "X-Frame-Options": "DENY",
}
RECENT = 50
JOB_COLUMNS = (
    "id",
    "kind",
    "scenario",
    "state",
    "status",
    "stage",
    "progress",
    "attempts",
    "policy_id",
    "created_at",
    "updated_at",
    "finished_at",
    "error",
)

STYLE = """
body{font:14px/1.4 system-ui,-apple-system,'Segoe UI',sans-serif;margin:0;background:#f6f7f9;color:#1d2430}
header{background:#1f3a2e;color:#fff;padding:10px 20px;display:flex;align-items:center;gap:16px}
header h1{font-size:18px;margin:0;font-weight:600} header .meta{opacity:.8;font-size:12px;flex:1}
header form{margin:0} button{font:inherit;padding:4px 10px;border:1px solid #8aa;border-radius:4px;
background:#fff;cursor:pointer}
main{padding:12px 20px;display:grid;gap:14px;grid-template-columns:repeat(auto-fit,minmax(440px,1fr))}
section{background:#fff;border:1px solid #dde1e6;border-radius:6px;padding:10px 14px;overflow-x:auto}
section.wide{grid-column:1/-1} h2{font-size:15px;margin:0 0 8px} h3{font-size:13px;margin:10px 0 4px}
table{border-collapse:collapse;width:100%;font-size:12.5px} th,td{text-align:left;padding:3px 8px 3px 0;
border-bottom:1px solid #eef0f2;white-space:nowrap} th{color:#5b6675;font-weight:600}
td.num{text-align:right;font-variant-numeric:tabular-nums} code{font-size:12px}
.empty{color:#7a8594;font-style:italic} .flag{color:#b3261e;font-weight:600} .ok{color:#1e7b34}
svg{display:block;margin:4px 0} .chart text{font-size:10px;fill:#5b6675}
.login{max-width:420px;margin:60px auto;background:#fff;border:1px solid #dde1e6;border-radius:6px;padding:20px}
.login input{width:100%;box-sizing:border-box;padding:6px;margin:8px 0;font:inherit} .err{color:#b3261e}
"""


def esc(value: object) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def when(ts: object) -> str:
    if not isinstance(ts, int | float | str):
        return ""
    try:
        return datetime.fromtimestamp(float(ts), UTC).strftime("%Y-%m-%d %H:%M:%S")
    except (TypeError, ValueError, OverflowError, OSError):
        return ""


def _num(value: object, digits: int = 4) -> str:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return "" if value is None else esc(value)
    return f"{value:.{digits}g}"


# -------------------------------------------------------------------------------------------- charts
def _finite(values: Iterable[object]) -> list[float]:
    out = []
    for v in values:
        if isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v):
            out.append(float(v))
    return out


def bar_chart(
    values: Sequence[float],
    title: str,
    unit: str = "",
    width: int = 460,
    height: int = 110,
    highlight: Sequence[bool] | None = None,
) -> str:
    """Vertical bars (one per value, in order) scaled to the largest; ``highlight`` bars are drawn red."""
    vals = _finite(values)
    if not vals:
        return ""
    top = max(max(vals), 1e-12)
    left, bottom, pad = 44, 16, 4
    plot_w, plot_h = width - left - pad, height - bottom - pad
    step = plot_w / len(vals)
    bars = []
    for i, v in enumerate(vals):
        h = max(plot_h * max(v, 0.0) / top, 0.5)
        flagged = highlight is not None and i < len(highlight) and highlight[i]
        color = "#c0392b" if flagged else "#2e7d5b"
        bars.append(
            f'<rect x="{left + i * step + 0.5:.1f}" y="{pad + plot_h - h:.1f}" '
            f'width="{max(step - 1.0, 0.8):.1f}" height="{h:.1f}" fill="{color}"/>'
        )
        if flagged:  # a mark under the axis too: a flagged answer is often a fast (greedy) one, a tiny bar
            bars.append(f'<path d="M{left + (i + 0.5) * step:.1f} {pad + plot_h + 2} l-3 5 h6 z" fill="#c0392b"/>')
    return (
        f'<svg class="chart" role="img" width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
        f'xmlns="http://www.w3.org/2000/svg"><title>{esc(title)}</title>'
        f'<line x1="{left}" y1="{pad + plot_h}" x2="{width - pad}" y2="{pad + plot_h}" stroke="#99a"/>'
        f'<text x="{left - 4}" y="{pad + 8}" text-anchor="end">{_num(top, 3)}{esc(unit)}</text>'
        f'<text x="{left - 4}" y="{pad + plot_h}" text-anchor="end">0</text>'
        f'<text x="{left}" y="{height - 3}">oldest</text>'
        f'<text x="{width - pad}" y="{height - 3}" text-anchor="end">newest ({len(vals)})</text>'
        + "".join(bars)
        + "</svg>"
    )


def line_chart(values: Sequence[float], title: str, width: int = 460, height: int = 110) -> str:
    """A polyline of ``values`` in order, with the minimum and maximum marked on the axis."""
    vals = _finite(values)
    if not vals:
        return ""
    lo, hi = min(vals), max(vals)
    span = hi - lo or 1.0
    left, bottom, pad = 44, 16, 6
    plot_w, plot_h = width - left - pad, height - bottom - pad
    n = len(vals)
    pts = " ".join(
        f"{left + (plot_w * i / (n - 1) if n > 1 else plot_w / 2):.1f},{pad + plot_h - plot_h * (v - lo) / span:.1f}"
        for i, v in enumerate(vals)
    )
    last = pts.split(" ")[-1].split(",")
    return (
        f'<svg class="chart" role="img" width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
        f'xmlns="http://www.w3.org/2000/svg"><title>{esc(title)}</title>'
        f'<line x1="{left}" y1="{pad + plot_h}" x2="{width - pad}" y2="{pad + plot_h}" stroke="#99a"/>'
        f'<text x="{left - 4}" y="{pad + 8}" text-anchor="end">{_num(hi, 4)}</text>'
        f'<text x="{left - 4}" y="{pad + plot_h}" text-anchor="end">{_num(lo, 4)}</text>'
        f'<text x="{left}" y="{height - 3}">1</text>'
        f'<text x="{width - pad}" y="{height - 3}" text-anchor="end">{n}</text>'
        f'<polyline fill="none" stroke="#1f5fa8" stroke-width="1.6" points="{pts}"/>'
        f'<circle cx="{last[0]}" cy="{last[1]}" r="2.5" fill="#1f5fa8"/></svg>'
    )


def evaluation_returns(policy: dict) -> tuple[str, list[float]] | None:
    """(label, returns) of the policy's last evaluation when its metadata has one: ``evaluation.returns`` of
    the policy or of its training summary, ``eval_returns``, or the training's snapshot evaluations."""
    summary = policy.get("training_summary") or {}
    candidates = [
        (
            "evaluation returns",
            (policy.get("evaluation") or {}).get("returns") if isinstance(policy.get("evaluation"), dict) else None,
        ),
        (
            "evaluation returns",
            (summary.get("evaluation") or {}).get("returns") if isinstance(summary.get("evaluation"), dict) else None,
        ),
        ("evaluation returns", summary.get("eval_returns")),
        ("snapshot evaluation returns", summary.get("snapshot_returns")),
    ]
    for label, values in candidates:
        if isinstance(values, list):
            finite = _finite(values)
            if finite:
                return label, finite[-500:]
    return None


# ---------------------------------------------------------------------------------------------- data
def job_rows(db: Database, limit: int = RECENT) -> tuple[list[str], list[dict]] | None:
    """(columns, recent rows) of the jobs table, or None when the database has none."""
    try:
        inspector = sa.inspect(db.read)
        tables = set(inspector.get_table_names())
        name = next((t for t in JOB_TABLES if t in tables), None)
        if name is None:
            return None
        present = [c["name"] for c in inspector.get_columns(name)]
        shown = [c for c in JOB_COLUMNS if c in present] or present[:6]
        table = sa.table(name, *(sa.column(c) for c in present))
        query = sa.select(*(table.c[c] for c in shown)).limit(limit)
        if "created_at" in present:
            query = query.order_by(table.c.created_at.desc())
        with db.read.connect() as conn:
            rows = [dict(r) for r in conn.execute(query).mappings()]
        return shown, rows
    except Exception:
        return None


def collect(app) -> dict:
    db: Database = app.state.db
    with db.read.connect() as conn:
        recent = [
            r[0]
            for r in conn.execute(sa.select(decisions.c.response).order_by(decisions.c.created_at.desc()).limit(RECENT))
        ]
        bandits = [
            dict(r)
            for r in conn.execute(
                sa.select(
                    sessions.c.id,
                    sessions.c.kind,
                    sessions.c.n_selections,
                    sessions.c.n_feedback,
                    sessions.c.created_at,
                )
                .order_by(sessions.c.created_at.desc())
                .limit(RECENT)
            ).mappings()
        ]
        totals = {
            "decisions": conn.execute(sa.select(sa.func.count()).select_from(decisions)).scalar_one(),
            "sessions": conn.execute(sa.select(sa.func.count()).select_from(sessions)).scalar_one(),
        }
    return {
        "policies": app.state.policies.list(),
        "jobs": job_rows(db),
        "sessions": bandits,
        "decisions": recent,
        "totals": totals,
    }


# ---------------------------------------------------------------------------------------------- HTML
def _table(headers: Sequence[str], rows: list[list[str]], numeric: Iterable[int] = ()) -> str:
    num = set(numeric)
    head = "".join(f"<th>{esc(h)}</th>" for h in headers)
    body = "".join(
        "<tr>"
        + "".join(f'<td class="num">{c}</td>' if i in num else f"<td>{c}</td>" for i, c in enumerate(row))
        + "</tr>"
        for row in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _policies(policies: list[dict]) -> str:
    if not policies:
        return '<p class="empty">no policies registered</p>'
    rows = [
        [
            f"<code>{esc(p.get('id'))}</code>",
            esc(p.get("scenario")),
            f"<code>{esc(p.get('policy_version'))}</code>",
            esc(p.get("path")),
            esc(p.get("state_length")),
            when(p.get("created_at")),
        ]
        for p in policies
    ]
    out = [_table(["id", "scenario", "version", "path", "state length", "registered (UTC)"], rows, [4])]
    for p in policies:
        found = evaluation_returns(p)
        if found is not None:
            label, values = found
            mean = sum(values) / len(values)
            out.append(
                f"<h3>{esc(label)}: policy <code>{esc(p.get('id'))}</code> ({len(values)} values, mean "
                f"{_num(mean)})</h3>" + line_chart(values, f"{label} of policy {p.get('id')}")
            )
    return "".join(out)


def _jobs(jobs: tuple[list[str], list[dict]] | None) -> str:
    if jobs is None or not jobs[1]:
        return '<p class="empty">no jobs</p>'
    columns, rows = jobs
    cells = [[when(r.get(c)) if c.endswith("_at") else esc(r.get(c))[:200] for c in columns] for r in rows]
    return _table(columns, cells)


def _sessions(rows: list[dict]) -> str:
    if not rows:
        return '<p class="empty">no bandit sessions</p>'
    cells = [
        [
            f"<code>{esc(r['id'])}</code>",
            esc(r["kind"]),
            esc(r["n_selections"]),
            esc(r["n_feedback"]),
            when(r["created_at"]),
        ]
        for r in rows
    ]
    return _table(["id", "kind", "selections", "feedback", "created (UTC)"], cells, [2, 3])


def _decisions(recent: list[dict]) -> str:
    if not recent:
        return '<p class="empty">no decisions yet</p>'
    chrono = list(reversed(recent))
    ms = [1000.0 * float(d.get("seconds") or 0.0) for d in chrono]
    chart = bar_chart(
        ms,
        "decision solver time (ms), oldest to newest",
        " ms",
        highlight=[bool(d.get("deadline_hit")) for d in chrono],
    )
    flagged = sum(bool(d.get("deadline_hit")) for d in recent)
    summary = (
        f"<h3>solver time of the last {len(recent)} decisions (ms; red, marked: deadline hit, {flagged})</h3>{chart}"
    )
    rows = []
    for d in recent:
        action = d.get("action") or []
        action_text = ",".join(str(a) for a in action[:24]) + ("..." if len(action) > 24 else "")
        hit = '<span class="flag">yes</span>' if d.get("deadline_hit") else "no"
        rows.append(
            [
                f"<code>{esc(d.get('id'))}</code>",
                f"<code>{esc(d.get('policy_id'))}</code>",
                esc(d.get("selector")),
                esc(d.get("status")),
                _num(d.get("value")),
                _num(1000.0 * float(d.get("seconds") or 0.0), 3),
                hit,
                f"<code>{esc(action_text)}</code>",
                when(d.get("created_at")),
            ]
        )
    return summary + _table(
        ["id", "policy", "selector", "status", "value", "ms", "deadline hit", "action", "time (UTC)"], rows, [4, 5]
    )


def page(data: dict, version: str, key_name: str | None = None) -> str:
    totals = data["totals"]
    now = datetime.fromtimestamp(time.time(), UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    meta = (
        f"version {esc(version)} &middot; {len(data['policies'])} policies &middot; {esc(totals['sessions'])}"
        f" bandit sessions &middot; {esc(totals['decisions'])} decisions &middot; {esc(now)}"
        + (f" &middot; key {esc(key_name)}" if key_name else "")
    )
    sections = [
        ("policies", "Policies", _policies(data["policies"]), "wide"),
        ("jobs", "Training jobs", _jobs(data["jobs"]), ""),
        ("sessions", "Bandit sessions", _sessions(data["sessions"]), ""),
        ("decisions", f"Recent decisions (last {RECENT})", _decisions(data["decisions"]), "wide"),
    ]
    body = "".join(
        f'<section id="{sid}" class="{cls}"><h2>{title}</h2>{content}</section>'
        for sid, title, content, cls in sections
    )
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Redwood operator</title>'
        f'<meta name="viewport" content="width=device-width"><style>{STYLE}</style></head><body>'
        f'<header><h1>Redwood operator</h1><div class="meta">{meta}</div>'
        '<form method="post" action="/v1/ui/logout"><button type="submit">log out</button></form></header>'
        f"<main>{body}</main></body></html>"
    )


def login_page(error: str | None = None) -> str:
    err = f'<p class="err" id="error">{esc(error)}</p>' if error else ""
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Redwood operator: log in</title>'
        f'<style>{STYLE}</style></head><body><div class="login"><h2>Redwood operator</h2>'
        "<p>An API key with the <code>read</code> scope (kept in an HttpOnly cookie for this page only).</p>"
        f'{err}<form method="post" action="/v1/ui/login"><label for="key">API key</label>'
        '<input id="key" name="key" type="password" autocomplete="off" required maxlength="200">'
        '<button type="submit" id="login">log in</button></form></div></body></html>'
    )
