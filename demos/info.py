"""``hrlbc demos info``: a dataset summary a person can read."""

from __future__ import annotations

import numpy as np

from demos.store import DemoDataset


def _dagger_line(m: dict, success: np.ndarray) -> list[str]:
    """For a DAgger store: where its episodes begin, and how often the acting skills succeeded."""
    d = m.get("dagger")
    if not d:
        return []
    first, n = d["first_dagger_episode"], len(success) - d["first_dagger_episode"]
    rate = f"{success[first:].mean():.1%}" if n > 0 else "-"
    return [f"dagger       episodes {first}- ({n}) by {d['skills']}: their success {rate}"]


def summary(ds: DemoDataset) -> str:
    m = ds.metadata
    cfg = m.get("config", {})
    skills = m.get("skills", [])
    counts = np.bincount(np.asarray(ds.arrays["skill"][: ds.num_frames]), minlength=len(skills))
    success = ds.meta("success")
    lengths = ds.meta("length")
    size = ds.disk_bytes()
    lines = [
        f"dataset      {ds.path}",
        f"task         {m.get('task')} ({m.get('env_id')}), mode {cfg.get('mode')}, "
        f"{cfg.get('cameras')} camera(s) {cfg.get('image_size')}px {'random' if cfg.get('random_camera') else 'fixed'}",
        f"episodes     {ds.num_episodes}   frames {ds.num_frames}   "
        f"length mean {lengths.mean() if len(lengths) else 0:.0f} (min {lengths.min() if len(lengths) else 0}, "
        f"max {lengths.max() if len(lengths) else 0})",
        f"success      {success.mean() if len(success) else 0:.1%} ({int(success.sum())}/{len(success)})",
        *_dagger_line(m, success),
        f"arrays       {', '.join(f'{k} {a.dtype}{tuple(a.shape[1:])}' for k, a in ds.arrays.items())}",
        f"disk         {size / 2**20:.1f} MiB, {size / max(ds.num_frames, 1):.0f} bytes/frame",
        f"provenance   hrlbc {m.get('version')}, commit {str(m.get('git_commit'))[:10]}, created {m.get('created')}",
        "frames per skill:",
    ]
    for i, name in enumerate(skills):
        lines.append(f"  {i} {name:<22} {counts[i]:>8} ({counts[i] / max(ds.num_frames, 1):.0%})")
    return "\n".join(lines)
