"""Where the map draws each place: the world file's `pos` where given, otherwise a
force-directed layout from a fixed start, so the same world is always drawn the same
way."""

from __future__ import annotations

import math

Point = tuple[float, float]

#: the map's drawing box; every layout is scaled into it
WIDTH, HEIGHT, MARGIN = 1000.0, 700.0, 60.0


def layout(
    ids: list[str], edges: list[tuple[str, str]], fixed: dict[str, Point] | None = None
) -> dict[str, Point]:
    """A position per place id in the drawing box. Places with a `fixed` position keep
    it (relative to each other); the others are laid out around them."""
    fixed = {k: v for k, v in (fixed or {}).items() if k in ids}
    if ids and len(fixed) == len(ids):
        return _fit(fixed)
    order = sorted(ids)
    n = max(len(order), 1)
    pos: dict[str, list[float]] = {}
    for i, pid in enumerate(order):
        angle = 2 * math.pi * i / n
        pos[pid] = [math.cos(angle), math.sin(angle)]
    if fixed:
        scaled = _fit(fixed, (-1.0, -1.0, 1.0, 1.0))
        for pid, (x, y) in scaled.items():
            pos[pid] = [x, y]
    k = math.sqrt(4.0 / n)
    temp = 0.2
    for _ in range(300):
        disp = {pid: [0.0, 0.0] for pid in order}
        for i, a in enumerate(order):
            for b in order[i + 1 :]:
                dx, dy = pos[a][0] - pos[b][0], pos[a][1] - pos[b][1]
                d = max(math.hypot(dx, dy), 1e-6)
                f = k * k / d
                disp[a][0] += dx / d * f
                disp[a][1] += dy / d * f
                disp[b][0] -= dx / d * f
                disp[b][1] -= dy / d * f
        for a, b in edges:
            if a not in pos or b not in pos:
                continue
            dx, dy = pos[a][0] - pos[b][0], pos[a][1] - pos[b][1]
            d = max(math.hypot(dx, dy), 1e-6)
            f = d * d / k
            disp[a][0] -= dx / d * f
            disp[a][1] -= dy / d * f
            disp[b][0] += dx / d * f
            disp[b][1] += dy / d * f
        for pid in order:
            if pid in fixed:
                continue
            dx, dy = disp[pid]
            d = max(math.hypot(dx, dy), 1e-6)
            step = min(d, temp)
            pos[pid][0] += dx / d * step
            pos[pid][1] += dy / d * step
        temp = max(temp * 0.985, 0.002)
    return _fit({pid: (p[0], p[1]) for pid, p in pos.items()})


def _fit(
    points: dict[str, Point],
    box: tuple[float, float, float, float] = (MARGIN, MARGIN, WIDTH - MARGIN, HEIGHT - MARGIN),
) -> dict[str, Point]:
    """Scale and move `points` into `box`, keeping their proportions."""
    if not points:
        return {}
    xs = [p[0] for p in points.values()]
    ys = [p[1] for p in points.values()]
    w, h = max(xs) - min(xs) or 1.0, max(ys) - min(ys) or 1.0
    x0, y0, x1, y1 = box
    scale = min((x1 - x0) / w, (y1 - y0) / h)
    ox = x0 + ((x1 - x0) - w * scale) / 2
    oy = y0 + ((y1 - y0) - h * scale) / 2
    return {
        pid: (round(ox + (x - min(xs)) * scale, 1), round(oy + (y - min(ys)) * scale, 1))
        for pid, (x, y) in points.items()
    }
