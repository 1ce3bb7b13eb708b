"""The BriGeS results table (docs/results/briges.md) from ``fsmde-briges evaluate --sweep`` JSON files.

Rows: the teacher alone; the gate trained and run at tau = 1; the same gate at the best fixed tau
(chosen on the val split by AbsRel, reported on test); the gate trained with learnable tau. Columns:
affine-invariant AbsRel and delta1 on all pixels, occlusion boundaries and thin structures.
"""

from __future__ import annotations

import math

from fsmde_ros.briges.evaluate import TEACHER
from fsmde_ros.briges.metrics import SUBSETS, headline


def _sweep(results: dict, gate: str) -> dict[float, str]:
    """{tau: variant name} of the inference sweep of ``gate``, with the gate at its own tau when that is
    one value (a fixed-tau gate)."""
    prefix = f"{gate}@tau="
    sweep = {float(name[len(prefix) :]): name for name in results if name.startswith(prefix)}
    own = set(results[gate]["taus"]) if gate in results else set()
    if len(own) == 1:
        sweep.setdefault(round(own.pop(), 6), gate)
    return sweep


def best_tau(val: dict, gate: str) -> float:
    """The swept tau of ``gate`` with the lowest all-pixel AbsRel on ``val``."""
    sweep = _sweep(val["results"], gate)
    if not sweep:
        raise ValueError(
            f"results: the val evaluation has no temperature sweep of gate {gate!r} (use --sweep NAME)"
        )
    return min(sweep, key=lambda t: headline(val["results"][sweep[t]])["all_abs_rel"])


def _fmt(value: float, digits: int = 4) -> str:
    return "n/a" if value is None or math.isnan(value) else f"{value:.{digits}f}"


def results_markdown(
    val: dict,
    test: dict,
    parameters: dict,
    fixed: str,
    learnable: str,
    command: str,
    control: str | None = None,
    extra: tuple[str, ...] = (),
    metric_evals: dict[str, dict] | None = None,
) -> str:
    """The markdown report: main table, temperature sweeps and parameter counts. ``control`` names the
    gate trained without segmentation features, ``extra`` further gates (e.g. other seeds), each run
    at its own temperature. ``metric_evals`` are ``fsmde-eval`` JSON results by row label (students
    distilled from each teacher, teachers aligned to LiDAR), tabulated after the main table."""
    res = test["results"]
    for name in (TEACHER, fixed, learnable, *([control] if control else []), *extra):
        if name not in res:
            raise ValueError(f"results: the test evaluation has no variant {name!r} (has {sorted(res)})")
    tau_star = best_tau(val, fixed)
    rows = [
        ("teacher alone", TEACHER, "-"),
        ("+ gate, tau = 1", fixed, "1"),
        (f"+ gate, best fixed tau (val) = {tau_star:g}", _sweep(res, fixed)[tau_star], f"{tau_star:g}"),
        ("+ gate, learnable tau", learnable, ", ".join(f"{t:.2f}" for t in res[learnable]["taus"])),
    ]
    if control:
        rows.append(("control: gate without segmentation, tau = 1", control, "1"))
    rows += [
        (f"gate `{name}`", name, ", ".join(f"{t:.2f}" for t in sorted(set(res[name]["taus"]))))
        for name in extra
    ]
    base = headline(res[TEACHER])["all_abs_rel"]
    head = (
        "| variant | tau | " + " | ".join(f"{s} AbsRel | {s} delta1" for s in SUBSETS) + " | AbsRel change |"
    )
    lines = [
        "# BriGeS on SynthSurround",
        "",
        f"Split `{test['split']}`, {test['frames']} frames x all cameras, seed {test['seed']}."
        " Affine-invariant: each image's relative disparity is least-squares aligned to the ground truth"
        " (MiDaS protocol), then scored with `fsmde_ros.evaluation` (per image, averaged per camera, then"
        " over cameras).",
        f"`boundary`: pixels within 1 px of a jump > {test['boundary_log_ratio']:g} in log depth (sky counts"
        f" as far); `thin`: class regions narrower than {test['thin_width']} px. Best fixed tau picked on"
        f" `{val['split']}` ({val['frames']} frames).",
        "",
        head,
        "|" + "---|" * (3 + 2 * len(SUBSETS)),
    ]
    for label, name, tau in rows:
        h = headline(res[name])
        cells = " | ".join(f"{_fmt(h[f'{s}_abs_rel'])} | {_fmt(h[f'{s}_a1'], 3)}" for s in SUBSETS)
        change = "-" if name == TEACHER else f"{100 * (h['all_abs_rel'] - base) / base:+.1f}%"
        lines.append(f"| {label} | {tau} | {cells} | {change} |")
    for gate in (fixed, learnable):
        sweep = _sweep(res, gate)
        if not sweep:
            continue
        lines += ["", f"Temperature sweep at inference, gate `{gate}` (all-pixel AbsRel):", ""]
        lines.append("| tau | " + " | ".join(f"{t:g}" for t in sorted(sweep)) + " |")
        lines.append("|---|" + "---|" * len(sweep))
        for label, data in (("val", val["results"]), ("test", res)):
            vals = [
                _fmt(headline(data[sweep[t]])["all_abs_rel"]) if sweep[t] in data else "n/a"
                for t in sorted(sweep)
            ]
            lines.append(f"| {label} | " + " | ".join(vals) + " |")
    if metric_evals:
        lines += [
            "",
            "Metric depth on the same split with the project's `fsmde-eval` (teachers: relative disparity"
            " least-squares aligned to each image's sparse LiDAR; students: metric as predicted):",
            "",
            "| model | frames | AbsRel | SqRel | RMSE | delta1 | cross-view AbsRel |",
            "|---|---|---|---|---|---|---|",
        ]
        for label, r in metric_evals.items():
            m = r["mean"]
            lines.append(
                f"| {label} | {r['frames']} | {_fmt(m['abs_rel'])} | {_fmt(m['sq_rel'])} | "
                f"{_fmt(m['rmse'], 3)} | {_fmt(m['a1'], 3)} | {_fmt(r['cross_view']['abs_rel'])} |"
            )
    if parameters:
        lines += [
            "",
            "| gate | trainable parameters | depth model | segmentation model | share of depth model |",
        ]
        lines.append("|---|---|---|---|---|")
        for name, p in parameters.items():
            lines.append(
                f"| {name} | {p['trainable']:,} | {p['depth_model']:,} | {p['segmentation_model']:,} | "
                f"{100 * p['trainable_share_of_depth_model']:.2f}% |"
            )
    lines += ["", "Reproduce:", "", "```", command, "```", ""]
    return "\n".join(lines)
