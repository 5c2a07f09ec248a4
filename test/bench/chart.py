#!/usr/bin/env python3
"""test/bench/chart.py — draws test/bench/bench_suite.py's results as SVG, with
no plotting library: the SVG is written as text.

Two charts, horizontal bars (server names read easily at the left):
  echo_cpu.svg      the server's CPU time per round trip, one panel per message
                    size (each with its own scale; a dashed line marks the bare
                    epoll floor; bars far beyond the others are cut, marked ≫,
                    and keep their values), medians of the fast-state runs;
  idle_memory.svg   bytes of anonymous RSS per idle connection, with the
                    issue's target (256 B) as a dashed line.
Every server keeps one colour in both; the legend is under the title.

  python3 test/bench/chart.py [build/bench/results.json] [--out build/bench]
Layer: test. Read first: test/bench/bench_suite.py (what the figures are).
"""
import argparse
import json
import os
import statistics
from xml.sax.saxutils import escape

# Colours: evloop stands out, the floor is neutral grey, the peers distinct.
COLOURS = {
    "epoll": "#8c8c8c",
    "evloop": "#e8590c",
    "evloop-buffered": "#f59f00",
    "libuv": "#1c7ed6",
    "libuv-textbook": "#74c0fc",
    "libev": "#2f9e44",
    "libevent": "#9c36b5",
    "asio": "#c2255c",
    "asyncio": "#495057",
    "uvloop": "#0c8599",
}
FALLBACK = ["#5c940d", "#d9480f", "#364fc7", "#a61e4d"]
WIDTH = 820
LABEL_W = 190  # the server names' column
BAR_H, GAP = 18, 6
MEMORY_TARGET = 256  # bytes per idle connection, the target


def colour(name, order):
    return COLOURS.get(name) or FALLBACK[order.index(name) % len(FALLBACK)]


def text(x, y, content, size=12, anchor="start", weight="normal", fill="#212529", backed=False):
    # backed: on a white box (its width guessed from the length), so that a
    # marker line behind stays out of the digits
    box = (f'<rect x="{x - 2:.1f}" y="{y - size + 1:.1f}" width="{len(content) * size * 0.6 + 4:.1f}" '
           f'height="{size + 3}" fill="white"/>') if backed else ""
    return (f'{box}<text x="{x:.1f}" y="{y:.1f}" font-size="{size}" text-anchor="{anchor}" '
            f'font-weight="{weight}" fill="{fill}">{escape(content)}</text>')


def number(value):
    if value >= 100:
        return f"{value:,.0f}"
    return f"{value:.1f}" if value >= 10 else f"{value:.2f}"


def legend(names, labels, order, y):
    """Swatches with labels, wrapped to the width; returns (elements, height)."""
    parts, x, line = [], 20, 0
    for name in names:
        label = labels.get(name, name)
        w = 22 + 7 * len(label) + 18
        if x + w > WIDTH - 10:
            x, line = 20, line + 1
        yy = y + line * 20
        parts.append(f'<rect x="{x}" y="{yy - 10}" width="12" height="12" fill="{colour(name, order)}"/>')
        parts.append(text(x + 17, yy, label, 12))
        x += w
    return parts, (line + 1) * 20


def panel(title, rows, order, y, unit, marker=None, show=number):
    """One bar panel: rows = [(name, label, value)]; returns (elements, height).

    The scale ends at the largest value, unless some are over 4x the median:
    then 25 % past the largest of the others, and the longer bars are cut
    (one slow peer would otherwise squeeze every other bar to a sliver)."""
    parts = [text(20, y + 14, title, 14, weight="bold")]
    values = [v for _, _, v in rows]
    top = max(values + [marker[1] if marker else 0]) or 1
    usual = [v for v in values if v <= 4 * statistics.median(values)]
    if len(usual) < len(values) and max(usual, default=0) > 0:
        top = max(max(usual) * 1.25, marker[1] * 1.2 if marker else 0)
    x0, x1 = LABEL_W, WIDTH - 90
    scale = (x1 - x0) / top
    y += 26
    height = len(rows) * (BAR_H + GAP)
    if marker:  # first, so the bars and their values lie over it
        label, value = marker
        mx = x0 + value * scale
        parts.append(f'<line x1="{mx:.1f}" y1="{y - 4}" x2="{mx:.1f}" y2="{y + height}" stroke="#343a40" '
                     f'stroke-dasharray="4,3" stroke-width="1"/>')
        parts.append(text(mx + 3, y - 6, label, 10, fill="#343a40"))
    for i, (name, label, value) in enumerate(rows):
        yy = y + i * (BAR_H + GAP)
        cut = value > top
        w = max(1.0, min(value, top) * scale)
        parts.append(text(x0 - 8, yy + BAR_H - 5, label, 12, anchor="end"))
        parts.append(f'<rect x="{x0}" y="{yy}" width="{w:.1f}" height="{BAR_H}" fill="{colour(name, order)}" rx="2">'
                     f'<title>{escape(label)}: {show(value)} {escape(unit)}</title></rect>')
        if cut:  # a break mark, so nobody reads the cut bar's length as its value
            bx = x0 + w - 14
            parts.append(f'<path d="M{bx:.1f},{yy + BAR_H + 2} l6,{-BAR_H - 4} M{bx + 5:.1f},{yy + BAR_H + 2} '
                         f'l6,{-BAR_H - 4}" stroke="white" stroke-width="2.5"/>')
        weight = "bold" if name.startswith("evloop") else "normal"
        parts.append(text(x0 + w + 5, yy + BAR_H - 5, ("≫ " if cut else "") + f"{show(value)} {unit}", 12,
                          weight=weight, backed=True))
    parts.append(f'<line x1="{x0}" y1="{y - 4}" x2="{x0}" y2="{y + height}" stroke="#343a40" stroke-width="1"/>')
    return parts, 26 + height + 18


def svg(width, height, body):
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
            f'viewBox="0 0 {width} {height}" font-family="DejaVu Sans, Helvetica, Arial, sans-serif">\n'
            f'<rect width="100%" height="100%" fill="white"/>\n' + "\n".join(body) + "\n</svg>\n")


def header(title, subtitle, names, labels, order):
    parts = [text(20, 28, title, 17, weight="bold"), text(20, 48, subtitle, 11, fill="#495057")]
    swatches, h = legend(names, labels, order, 72)
    return parts + swatches, 72 + h


def machine_line(data):
    m = data.get("machine", {})
    when = data.get("started_utc", "")[:10]
    return f"{m.get('cpu_model') or 'CPU ?'}, {len(m.get('cpus_usable') or [])} CPUs, Linux {m.get('kernel', '?')}; {when}"


def size_label(size):
    size = int(size)
    return f"{size // 1024} KiB" if size % 1024 == 0 else f"{size} B"


def echo_chart(data, labels, order):
    echo = data["echo"]
    by_size = echo["by_size"]
    names = [n for n in order if any(n in rows for rows in by_size.values())]
    subtitle = (f"{data['settings']['connections']} connections, ping-pong; server and client pinned to their own CPU; "
                f"medians of the fast-state runs ({echo['runs_total'] - echo['slow_runs']} of {echo['runs_total']})")
    body, y = header("Server CPU time per round trip (µs, lower is better)", subtitle, names, labels, order)
    body.append(text(20, y, machine_line(data), 11, fill="#495057"))
    y += 16
    for size, rows in by_size.items():
        bars = [(n, labels.get(n, n), rows[n]["cpu_us_per_rt"]["median"]) for n in order if n in rows]
        if not bars:
            continue
        floor = rows.get("epoll")
        marker = ("floor", floor["cpu_us_per_rt"]["median"]) if floor else None
        parts, h = panel(f"{size_label(size)} messages", bars, order, y, "µs", marker)
        body += parts
        y += h
    return svg(WIDTH, y + 10, body)


def memory_chart(data, labels, order):
    memory = data["idle_memory"]
    rows = [(n, labels.get(n, n), memory[n]["rss_anon_bytes_per_conn"]) for n in order
            if n in memory and "rss_anon_bytes_per_conn" in memory[n]]
    count = next((memory[n]["connections"] for n in order if n in memory and "connections" in memory[n]), 0)
    subtitle = (f"growth of the server's anonymous RSS (RssAnon) over {count:,} idle connections that each "
                "echoed one byte, divided by their number")
    body, y = header("Memory per idle connection (bytes, lower is better)", subtitle, [n for n, _, _ in rows],
                     labels, order)
    body.append(text(20, y, machine_line(data), 11, fill="#495057"))
    y += 16
    parts, h = panel("bytes per connection", [(n, l, max(v, 0.0)) for n, l, v in rows], order, y, "B",
                     (f"target {MEMORY_TARGET} B", MEMORY_TARGET), show=lambda v: f"{v:,.0f}")
    body += parts
    return svg(WIDTH, y + h + 10, body)


def main():
    here = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results", nargs="?", default=os.path.join(here, "build", "bench", "results.json"))
    parser.add_argument("--out", help="folder for the SVG files (default: beside the results)")
    args = parser.parse_args()
    with open(args.results) as f:
        data = json.load(f)
    out = args.out or os.path.dirname(os.path.abspath(args.results))
    os.makedirs(out, exist_ok=True)
    servers = data.get("servers", {})
    order = list(servers) or list(COLOURS)
    labels = {name: info.get("label", name) for name, info in servers.items()}
    written = []
    if data.get("echo", {}).get("by_size"):
        path = os.path.join(out, "echo_cpu.svg")
        with open(path, "w") as f:
            f.write(echo_chart(data, labels, order))
        written.append(path)
    if any("rss_anon_bytes_per_conn" in v for v in data.get("idle_memory", {}).values()):
        path = os.path.join(out, "idle_memory.svg")
        with open(path, "w") as f:
            f.write(memory_chart(data, labels, order))
        written.append(path)
    if not written:
        raise SystemExit(f"chart.py: {args.results} has neither echo nor idle-memory figures")
    for path in written:
        print(f"chart.py: wrote {path}")


if __name__ == "__main__":
    main()
