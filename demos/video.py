"""Turn stored or live frames into videos with the active skill written on each frame."""

from __future__ import annotations

import os
from pathlib import Path

import imageio.v2 as imageio
import numpy as np
from PIL import Image, ImageDraw

from demos.store import DemoDataset

VIDEO_SUFFIXES = (".mp4", ".gif")


def depth_to_rgb(depth: np.ndarray) -> np.ndarray:
    """(H, W) depth in [0, 1] -> (H, W, 3) uint8, viridis (near = dark blue, far = yellow)."""
    from matplotlib import colormaps

    return (colormaps["viridis"](np.clip(depth, 0, 1))[..., :3] * 255).astype(np.uint8)


def annotate(image: np.ndarray, lines: list[str]) -> np.ndarray:
    """Write ``lines`` of text on a dark band at the top of ``image`` (H, W, 3) uint8."""
    pil = Image.fromarray(image)
    draw = ImageDraw.Draw(pil)
    draw.rectangle((0, 0, pil.width, 12 * len(lines) + 4), fill=(0, 0, 0))
    for i, line in enumerate(lines):
        draw.text((4, 2 + 12 * i), line, fill=(255, 255, 255))
    return np.asarray(pil)


def compose_frame(depth: np.ndarray, rgb: np.ndarray | None, lines: list[str], scale: int = 4) -> np.ndarray:
    """Depth (and RGB) side by side, upscaled ``scale`` x (nearest), annotated."""
    panels = [depth_to_rgb(depth)] + ([rgb] if rgb is not None else [])
    image = np.concatenate(panels, axis=1)
    image = image.repeat(scale, axis=0).repeat(scale, axis=1)
    return annotate(image, lines)


def write_video(path: str | Path, frames: list[np.ndarray], fps: int = 10) -> Path:
    """Write RGB frames to ``.mp4`` (H.264 via imageio-ffmpeg) or ``.gif``."""
    path = Path(path)
    if path.suffix.lower() not in VIDEO_SUFFIXES:
        raise ValueError(f"video path must end in {' or '.join(VIDEO_SUFFIXES)}, got {str(path)!r}")
    # Written beside the target, then renamed: a kill leaves no half video under the real name. Opening it
    # first turns an unwritable place into one OSError, before imageio or ffmpeg start and print their own.
    tmp = path.with_name(f".{path.stem}.{os.getpid()}.tmp{path.suffix}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        open(tmp, "wb").close()
    except OSError as exc:
        raise OSError(f"cannot write the video {path}: {exc.strerror}") from None
    try:
        if path.suffix.lower() == ".gif":
            imageio.mimsave(tmp, frames, duration=1000 / fps, loop=0)
        else:
            imageio.mimsave(tmp, frames, fps=fps, macro_block_size=8)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def episode_video(dataset: DemoDataset, episode: int, out: str | Path, view: int = 0) -> Path:
    """Video of a stored episode: depth (and RGB if stored) of camera ``view``, skill name per frame."""
    views = dataset.arrays["depth"].shape[1]
    if not 0 <= view < views:
        raise IndexError(f"view {view} out of range: the dataset has {views} camera view(s)")
    ep = dataset.episode(episode, keys=tuple(k for k in ("depth", "rgb", "skill") if k in dataset.arrays))
    names = dataset.metadata.get("skills", [])
    success = bool(dataset.meta("success")[episode])
    frames = []
    for t in range(len(ep["skill"])):
        skill = int(ep["skill"][t])
        name = names[skill] if skill < len(names) else str(skill)
        rgb = ep["rgb"][t, view] if "rgb" in ep else None
        lines = [f"{dataset.task} ep {episode} t={t}", f"skill {skill}: {name}"]
        if t == len(ep["skill"]) - 1:
            lines.append("SUCCESS" if success else "failure")
        frames.append(compose_frame(ep["depth"][t, view], rgb, lines))
    return write_video(out, frames)
