"""How cost grows with the data: a table and bench/growth.png from the results at hand.

Reads `bench/results/pages-x1.json`, `-x10.json`, `-x100.json` (written by
`bench/pages.py --scale N`) and every `bench/results/*-growth.json` in the format of
`bench/common.py` (the digest's is `digest-growth.json`, written by
`bench/digest.py --growth`, its cost per recipient). Plots whatever exists:
one panel per kind of data, cost per unit of work against the data's size, both
axes logarithmic, with a dotted line for "grows in proportion" from the first point.

    python bench/growth.py
"""

from __future__ import annotations

import json
import re
import sys
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import GROWTH_ROW, RESULTS, ROOT

PAGES = ("article, uncached", "home, uncached", "category, uncached", "article, cached")
# What grows, for each results file's name (bench/results/<name>-growth.json).
SIZES = {"articles": "articles", "checkout": "gifts in the database", "digest": "subscribers"}


def page_rows() -> list[dict]:
    """One row per page and scale: seconds per request = 1 / requests per second at full load."""
    rows = []
    for path in sorted(RESULTS.glob("pages-x*.json")):
        if not re.fullmatch(r"pages-x\d+\.json", path.name):
            continue  # a kept earlier run (`pages-x1-first-pass.json`), not a scale of its own
        data = json.loads(path.read_text())
        for label in PAGES:
            row = data["rows"].get(label)
            if row:
                rows.append(
                    {
                        "scale": data["scale"],
                        "rows": data.get("articles"),
                        "seconds": 1 / row["rps"],
                        "peak_mb": None,
                        "label": f"{label} page",
                        "kind": "articles",
                    }
                )
    return rows


def growth_rows() -> list[dict]:
    rows = []
    for path in sorted(RESULTS.glob("*-growth.json")):
        kind = path.name.removesuffix("-growth.json")
        for row in json.loads(path.read_text()):
            missing = [key for key in GROWTH_ROW if key not in row]
            if missing:
                sys.exit(f"{path.name}: a row lacks {', '.join(missing)} (see bench/common.py)")
            rows.append({**row, "kind": kind})
    return rows


def table(rows: list[dict]) -> str:
    lines = [
        "| data | what | scale | rows | cost per unit | vs 1x | peak MB |",
        "|---|---|---|---|---|---|---|",
    ]
    first: dict[tuple[str, str], float] = {}
    for row in sorted(rows, key=lambda r: (r["kind"], r["label"], r["scale"])):
        key = (row["kind"], row["label"])
        first.setdefault(key, row["seconds"])
        seconds = row["seconds"]
        cost = f"{seconds * 1000:.2f} ms" if seconds < 1 else f"{seconds:.1f} s"
        peak = f"{row['peak_mb']:.0f}" if row.get("peak_mb") else ""
        lines.append(
            f"| {row['kind']} | {row['label']} | {row['scale']}x | {row['rows']:,} | {cost} "
            f"| {seconds / first[key]:.2f}x | {peak} |"
        )
    return "\n".join(lines)


def plot(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    kinds = sorted({row["kind"] for row in rows})
    figure, axes = plt.subplots(1, len(kinds), figsize=(6 * len(kinds), 4.5), squeeze=False)
    for axis, kind in zip(axes[0], kinds, strict=True):
        series: dict[str, list[dict]] = defaultdict(list)
        for row in rows:
            if row["kind"] == kind:
                series[row["label"]].append(row)
        for label, points in sorted(series.items()):
            points.sort(key=lambda r: r["rows"])
            xs = [p["rows"] for p in points]
            ys = [p["seconds"] * 1000 for p in points]
            line = axis.plot(xs, ys, marker="o", label=label)[0]
            if len(xs) > 1:
                axis.plot(
                    xs,
                    [ys[0] * x / xs[0] for x in xs],
                    linestyle=":",
                    color=line.get_color(),
                    alpha=0.5,
                )
        axis.set_xscale("log")
        axis.set_yscale("log")
        size = SIZES.get(kind, kind)
        axis.set_xlabel(size)
        axis.set_ylabel("ms per unit of work")
        axis.set_title(f"{kind}: cost as {size} grow (dotted: in proportion)", fontsize=10)
        axis.grid(True, which="both", alpha=0.3)
        axis.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    print(f"wrote {path.relative_to(ROOT)}")


def main() -> None:
    rows = page_rows() + growth_rows()
    if not rows:
        sys.exit("no results yet: run bench/pages.py --scale 1, 10 and 100 first")
    print(table(rows))
    plot(rows, ROOT / "bench" / "growth.png")


if __name__ == "__main__":
    main()
