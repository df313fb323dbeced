"""A decode-step curve: measured step times at a few active-slot counts, interpolated between.

Written `"1:22.9,2:43.3,4:64.9"` (slots:milliseconds). A real engine's step time need not
follow any simple law in the slot count (on a 2-core CPU, two slots cost nearly twice one,
while four cost only three times one), so a profile can carry the measured points themselves.
Between points the step is linear in the slot count; past either end it follows the nearest
segment (a single point is a constant), never below zero.
"""

from __future__ import annotations

Curve = tuple[tuple[int, float], ...]


def parse_curve(text: str) -> Curve:
    """`"1:22.9,2:43.3"` as ((1, 22.9), (2, 43.3)), sorted; "" is the empty curve.

    Raises ValueError naming the bad point.
    """
    points: dict[int, float] = {}
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        slots_text, sep, ms_text = part.partition(":")
        try:
            slots, ms = int(slots_text), float(ms_text)
        except ValueError:
            raise ValueError(f"{part!r} is not SLOTS:MS (e.g. 2:43.3)") from None
        if not sep or slots < 1 or not ms >= 0:
            raise ValueError(f"{part!r} needs SLOTS >= 1 and MS >= 0")
        if slots in points:
            raise ValueError(f"slot count {slots} appears twice")
        points[slots] = ms
    return tuple(sorted(points.items()))


def format_curve(curve: Curve) -> str:
    """The text form `parse_curve` reads back."""
    return ",".join(f"{slots}:{ms:.6g}" for slots, ms in curve)


def curve_ms(curve: Curve, slots: int) -> float:
    """The step time (ms) at `slots` active slots; the curve must not be empty."""
    if len(curve) == 1:
        return curve[0][1]
    # The segment that holds `slots`, or the first/last one past either end.
    index = 1
    while index < len(curve) - 1 and curve[index][0] < slots:
        index += 1
    (x0, y0), (x1, y1) = curve[index - 1], curve[index]
    return max(0.0, y0 + (y1 - y0) * (slots - x0) / (x1 - x0))
