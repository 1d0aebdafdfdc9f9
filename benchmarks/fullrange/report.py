"""The report of a full-range study (benchmarks/cifar10_fullrange.py): per-method tables of top-1 and
energy at every k, the verdict on the claim, the comparison picture and the published JSON — all read
from the study's state (its ``teacher`` and ``students`` entries), nothing recomputed. The commands it
lists follow the state's path rule (``$DATA`` for the data folder, other paths relative), whenever the
state recorded them."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path

from spikedistill.io import atomic_write_text

from .state import DATA, portable_command


def _mean(values: list[float]) -> float:
    return sum(values) / len(values)


def summarize(state: dict) -> dict:
    """Per method: mean top-1 / energy at each k over its seeds, the per-seed values, wall times."""
    table: dict[str, dict] = {}
    for key, entry in state["students"].items():
        row = table.setdefault(entry["method"], {"seeds": [], "top1": [], "energy_mj": [], "wall": [], "epochs": [],
                                                 "train": []})
        row["seeds"].append(entry["seed"])
        row["top1"].append(entry["top1"])
        row["energy_mj"].append(entry["energy_mj"])
        row["wall"].append(entry["wall_seconds"])
        row["train"].append(entry["train_seconds"])
        row["epochs"].append(entry["epochs"])
    for row in table.values():
        row["mean"] = [_mean(col) for col in zip(*row["top1"])]
        row["spread"] = [max(col) - min(col) for col in zip(*row["top1"])]
        row["low"] = [min(col) for col in zip(*row["top1"])]
        row["high"] = [max(col) for col in zip(*row["top1"])]
        row["energy_mean"] = [_mean(col) for col in zip(*row["energy_mj"])]
    return table


# What each method claims over its baseline, at the k its paper deploys: (method, baseline, k).
CLAIMS = (("twkd", "skd", 1),     # full-range KD holds its accuracy at small T
          ("tssd", "ce", 4),      # self-distillation beats the plain student at its deployment T, no teacher
          ("tser", "skd", 4),     # each beats standard KD
          ("ckdsnn", "skd", 4))


def claim(table: dict, method: str, baseline: str, k: int) -> dict:
    """``method`` against ``baseline`` at ``k``, by the study's rule: "holds" when every per-seed gap exceeds
    the larger seed-to-seed range of the two at k, "reversed" when every gap is below minus that range,
    else "not shown". A method with one seed has no measured range: "not shown"; an unrun one "not run"."""
    result = {"method": method, "baseline": baseline, "timesteps": k, "gaps": [], "seed_range": None}
    if method not in table or baseline not in table:
        return {**result, "verdict": "not run"}
    ours, base, i = table[method], table[baseline], k - 1
    seeds = sorted(set(ours["seeds"]) & set(base["seeds"]))
    result["gaps"] = [round(ours["top1"][ours["seeds"].index(s)][i] - base["top1"][base["seeds"].index(s)][i], 2)
                      for s in seeds]
    if len(ours["seeds"]) < 2 or len(base["seeds"]) < 2 or not seeds:
        return {**result, "verdict": "not shown"}
    noise = round(max(ours["spread"][i], base["spread"][i]), 2)
    verdict = ("holds" if min(result["gaps"]) > noise else
               "reversed" if max(result["gaps"]) < -noise else "not shown")
    return {**result, "seed_range": noise, "verdict": verdict}


def claims(table: dict) -> list[dict]:
    return [claim(table, *c) for c in CLAIMS]


def gap_verdict(table: dict, method: str = "twkd") -> str:
    """The full-range claim in words: ``method`` − skd at T=1 against seed noise (see ``claim``)."""
    if method not in table or "skd" not in table:
        return f"{method} vs skd at T=1: not measured (run both methods)."
    c = claim(table, method, "skd", 1)
    gap = table[method]["mean"][0] - table["skd"]["mean"][0]
    if c["seed_range"] is None:
        return f"{method} − skd at T=1: {gap:+.2f} points (one seed: seed noise not measured, no verdict)."
    verdict = (f"{method} beats skd by more than seed noise: it holds its accuracy at small T"
               if c["verdict"] == "holds" else "NOT beyond seed noise: the claim is not shown at this size")
    return (f"{method} − skd at T=1: {gap:+.2f} points (per seed: {', '.join(f'{g:+.2f}' for g in c['gaps'])}); "
            f"seed noise (largest seed-to-seed range of either at T=1): {c['seed_range']:.2f} → {verdict} "
            "(rule: every per-seed gap > that range).")


def devices_used(state: dict) -> list[str]:
    entries = ([state["teacher"]] if state.get("teacher") else []) + list(state["students"].values())
    return sorted({e["device"] for e in entries if e.get("device")})


def budget_sentence(state: dict) -> str:
    budgets = {p["budget_minutes"] for name, p in state["plan"].items() if name != "teacher"}
    if budgets <= {None}:
        return "Epochs were fixed, not budgeted."
    return (f"Each student gets the same wall-clock training budget ({', '.join(f'{b:g}' for b in budgets if b)} min): "
            "epochs = budget ÷ the measured epoch time of that objective.")


def recipe_lines(state: dict, order: list[str]) -> list[str]:
    """The recipe as it ran, read back from the configs stored with each result (overrides included)."""
    def describe(cfg: dict) -> str:
        o, m = cfg["optim"], cfg["model"]
        return (f"{'SNN' if m['spiking'] else 'ANN'} `{m['name']}`"
                + (f" {m['options']}" if m["options"] else "")
                + f"; {o['name'].upper()}{'-Nesterov' if o['nesterov'] else ''} lr {o['lr']}, batch {o['batch_size']}, "
                f"{o['schedule']}{' (stepped per iteration)' if o['schedule'] == 'cosine' else ''}"
                f"{f', {warmup} warm-up epoch(s)' if (warmup := o.get('warmup_epochs')) else ''} over {o['epochs']} "
                f"epochs, wd {o['weight_decay']} on "
                f"{'all parameters' if o['decay_all'] else 'conv/linear weights'}; "
                f"augmentation {cfg['data']['augment']}; training images {cfg['data']['subset'] or 'all'}")

    teacher, students = state.get("teacher"), state["students"]
    lines = []
    if teacher:
        lines.append(f"- Teacher: {describe(teacher['config'])}; plain CE.")
    if students:
        first = next(iter(students.values()))
        cfg = first["config"]
        lines.append(f"- Students: {describe(cfg)}; trained at T = {cfg['timesteps']}"
                     + (" (TSSD at T + 2)" if "tssd" in order else "")
                     + f", scored at k = 1..{state['max_timesteps']}. The same LIF for every objective. "
                     + budget_sentence(state))
        losses = {}
        for entry in students.values():
            losses.setdefault(entry["method"], entry["loss"])
        lines.append("- Objectives: " + "; ".join(f"`{m}` = {losses[m]['name']} {losses[m]['options']}" for m in order))
        speed = ("bf16 autocast, channels_last, cudnn autotuning, dataset resident on the GPU, batched GPU augmentation"
                 if cfg["precision"] == "bf16" and "cuda" in cfg["device"] else "fp32 on the CPU")
        lines.append(f"- Speed: {speed}{', torch.compile' if cfg['compile'] else ''}; one test pass at the end; "
                     "scored with the final weights (no model selection on the test set).")
    return lines


def _cell(row: dict, i: int) -> str:
    if len(row["seeds"]) < 2:
        return f"{row['mean'][i]:.2f}"
    return f"{row['mean'][i]:.2f} ({row['low'][i]:.2f}–{row['high'][i]:.2f})"


def method_order(table: dict, profile) -> list[str]:
    """The profile's objectives in its order, then ``ce`` if the state holds it and the profile does not."""
    return [m for m in dict.fromkeys([*profile.students, "ce"]) if m in table]


def write_report(state: dict, out: Path, profile, smoke_note: str = "") -> list[Path]:
    """``OUT/<stem>.md`` and ``.png`` (and, for a profile of fixed recipes, the published ``.json``)
    from the study's state; ``profile`` names the files, the title and the objectives' order."""
    table = summarize(state)
    ks = list(range(1, state["max_timesteps"] + 1))
    teacher = state.get("teacher")
    smoke = state.get("smoke")
    order = method_order(table, profile)
    students = state["students"]
    first = next(iter(students.values()), None) or teacher
    data_cfg = first["config"]["data"] if first else {"subset": None, "test_subset": None}
    lines = [f"# {profile.title}", ""]
    if smoke:
        lines += ["> **SMOKE RUN — these numbers test the pipeline only and say nothing about the methods.** "
                  + smoke_note, ""]
    train_images, test_images = data_cfg["subset"] or 50000, data_cfg["test_subset"] or 10000
    lines += [f"- Data: {state['dataset']} (subset, see above)" if smoke else
              f"- Data: {state['dataset']}, {train_images:,} train / {test_images:,} test images",
              f"- Machine: {', '.join(devices_used(state)) or state.get('device')}; torch {state.get('torch')}",
              f"- Commit: `{state.get('commit')}`",
              f"- Seeds: {sorted({e['seed'] for e in students.values()})} (students); "
              f"teacher seed {teacher['seed'] if teacher else '—'}",
              f"- Written: {datetime.now(timezone.utc).strftime('%Y-%m-%d %H:%M UTC')}",
              f"- Command(s), in the order they ran (the study's sittings, then any report-only run; `{DATA}`: "
              "the data folder):"]
    lines += [f"  - `{c}`" for c in dict.fromkeys(portable_command(c) for c in state["commands"])]
    missing = [f"{m}-s{s}" for m, s in profile.plan if f"{m}-s{s}" not in students]
    if missing:
        lines.append(f"- Not run: {', '.join(missing)} — not reached when the study was stopped "
                     "(the same command continues it)")
    lines += ["", "## Recipe", ""] + recipe_lines(state, order) + [""]
    lines += ["## Top-1 (%) at each inference timestep k (mean over seeds; in brackets: the seed range)", "",
              "| method | " + " | ".join(f"k={k}" for k in ks) + " | seeds | epochs | train (s) per student |",
              "| --- | " + " | ".join("---:" for _ in ks) + " | ---: | ---: | ---: |"]
    if teacher:
        lines.append("| ANN teacher | " + " | ".join(f"{teacher['top1'][0]:.2f}" for _ in ks)
                     + f" | 1 | {teacher['epochs']} | {teacher['train_seconds']:.0f} |")
    for m in order:
        row = table[m]
        lines.append(f"| {m} | " + " | ".join(_cell(row, i) for i in range(len(ks)))
                     + f" | {len(row['seeds'])} | {'/'.join(map(str, sorted(set(row['epochs']))))} | "
                     + "/".join(f"{w:.0f}" for w in row["train"]) + " |")
    lines += ["", "The ANN teacher runs one step; its accuracy is repeated in every column.", "",
              "## Energy per sample (µJ) at each k (E = 4.6 pJ·MAC + 0.9 pJ·AC, stem MACs once; mean over seeds)", "",
              "| method | " + " | ".join(f"k={k}" for k in ks) + " |",
              "| --- | " + " | ".join("---:" for _ in ks) + " |"]
    if teacher:
        lines.append("| ANN teacher | " + " | ".join(f"{teacher['energy_mj'][0] * 1e3:.1f}" for _ in ks) + " |")
    for m in order:
        lines.append(f"| {m} | " + " | ".join(f"{e * 1e3:.1f}" for e in table[m]["energy_mean"]) + " |")
    lines += ["", "## Per seed", "",
              "| run | " + " | ".join(f"k={k}" for k in ks) + " | epochs | train (s) | wall (s) | load (1 min) |",
              "| --- | " + " | ".join("---:" for _ in ks) + " | ---: | ---: | ---: | --- |"]
    for key in sorted(students):
        e = students[key]
        wall = "—" if e.get("wall_seconds") is None else f"{e['wall_seconds']:.0f}{' †' if e.get('resumed') else ''}"
        lines.append(f"| {key}{' ‡' if e.get('adopted') else ''} | " + " | ".join(f"{v:.2f}" for v in e["top1"])
                     + f" | {e['epochs']} | {e['train_seconds']:.0f} | {wall} | {e.get('load', '—')} |")
    lines += ["", "Train seconds are the loop's own (metrics.csv, summed over resumes); wall adds data loading and "
              "the final test, for the sitting that finished the run († resumed: earlier sittings are in train "
              "seconds only). Load is the 1-minute load average when the stage ended (the machine may be shared)."]
    adopted = sorted({e["adopted"] for e in students.values() if e.get("adopted")})
    if adopted:
        lines.append("‡ Taken from an earlier sitting's published results (" + "; ".join(adopted) + ") with the same "
                     "recipe: top-1, energy and train seconds as published there, trained from that sitting's teacher"
                     + (f" (this study's teacher, same recipe and seed: {teacher['top1'][0]:.2f} %)."
                        if teacher else "."))
    lines += ["", "## The claims", "",
              "Rule: a method beats its baseline at k when, in every seed, its top-1 at k exceeds the baseline's by "
              "more than the larger seed-to-seed range of the two at k (\"holds\"); when every gap is below minus "
              "that range, the baseline wins (\"reversed\"); else, or with one seed, \"not shown\".", "",
              "| method | baseline | k | gap per seed (points) | seed range | verdict |",
              "| --- | --- | ---: | --- | ---: | --- |"]
    for c in claims(table):
        gaps = ", ".join(f"{g:+.2f}" for g in c["gaps"]) or "—"
        noise = "—" if c["seed_range"] is None else f"{c['seed_range']:.2f}"
        lines.append(f"| {c['method']} | {c['baseline']} | {c['timesteps']} | {gaps} | {noise} | {c['verdict']} |")
    lines += ["", "Rule: twkd *holds its accuracy at small T* when, in every seed, its T = 1 top-1 exceeds skd's by "
              "more than the larger seed-to-seed range of the two at T = 1.", "", f"- {gap_verdict(table)}"]
    if "twkd_mean" in table:
        lines.append(f"- The paper's sd target (`twkd_mean`): {gap_verdict(table, 'twkd_mean')}")
    if profile.name == "gpu" and teacher and "twkd" in table:
        twkd = table["twkd"]
        first_seed = min(range(len(twkd["seeds"])), key=lambda i: twkd["seeds"][i])
        total = teacher["wall_seconds"] + twkd["wall"][first_seed]
        lines.append(f"- Goal (H100): teacher + one twkd student < 10 min: {total / 60:.1f} min; twkd top-1 at T=4 "
                     f"{twkd['mean'][-1]:.2f}% (goal ≥ 93), at T=1 {twkd['mean'][0]:.2f}% (goal ≥ 91)"
                     + (" — smoke run, not a test of the goal." if smoke else "."))
    if teacher and teacher.get("retrained"):
        lines.append(f"- The teacher was retrained {teacher['retrained']} time(s) on a fresh machine "
                     "(same recipe and seed).")
    lines += ["", f"![full-range curves]({profile.stem}.png)", ""]
    md = out / f"{profile.stem}.md"
    atomic_write_text("\n".join(lines), md)
    png = plot(table, order, teacher, out / f"{profile.stem}.png",
               ("SMOKE — " if smoke else "") + f"{state['dataset']}: top-1 at every k")
    written = [md, png]
    if not profile.budgeted:
        path = out / f"{profile.stem}.json"
        atomic_write_text(json.dumps(published_results(state), indent=1) + "\n", path)
        written.insert(0, path)
    return written


def published_results(state: dict) -> dict:
    """The study's result file: top-1 and energy per k for every finished run, and the claims."""
    teacher = state.get("teacher")
    runs = []
    for key in sorted(state["students"], key=lambda k: (state["students"][k]["method"], state["students"][k]["seed"])):
        e = state["students"][key]
        runs.append({"method": e["method"], "seed": e["seed"],
                     "top1": {str(k): round(v, 2) for k, v in zip(e["timesteps"], e["top1"])},
                     "energy_uj": {str(k): round(v * 1e3, 3) for k, v in zip(e["timesteps"], e["energy_mj"])},
                     "epochs": e["epochs"], "train_seconds": e["train_seconds"]})
    return {"dataset": state["dataset"] + (" — SMOKE RUN" if state.get("smoke") else ""),
            "max_timesteps": state["max_timesteps"],
            "teacher_top1": round(teacher["top1"][0], 2) if teacher else None,
            "machine": ", ".join(devices_used(state)) or state.get("device"),
            "commit": state.get("commit"), "runs": runs, "claims": claims(summarize(state))}


def plot(table: dict, order: list[str], teacher: dict | None, path: Path, title: str) -> Path:
    """Top-1 (mean, seed range as error bars) and energy against k per method, the teacher dashed."""
    from spikedistill.evaluate.plot import plot_methods

    ks = range(1, len(next(iter(table.values()))["mean"]) + 1) if table else ()
    curves = {m: {"top1": dict(zip(ks, table[m]["mean"])),
                  "top1_range": dict(zip(ks, zip(table[m]["low"], table[m]["high"]))),
                  "energy_uj": {k: e * 1e3 for k, e in zip(ks, table[m]["energy_mean"])}} for m in order}
    return plot_methods(curves, path, title, teacher_top1=teacher["top1"][0] if teacher else None)
