"""The repository stays lean and its documents stay whole: no big files outside weights/, no dead links."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MAX_BYTES = 1 << 20  # 1 MiB: results keep their JSON, Markdown, PNG and a short GIF; checkpoints go to weights/
LINK = re.compile(r"\]\(([^)#\s]+)(#[^)\s]*)?\)")


def tracked_files() -> list[Path]:
    out = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout
    return [ROOT / p for p in out.decode().split("\0") if p]


def test_no_large_tracked_file_outside_weights():
    files = tracked_files()
    assert len(files) > 50, "git ls-files listed almost nothing: is this a checkout?"
    large = [
        f"{p.relative_to(ROOT)} ({p.stat().st_size / 2**20:.1f} MiB)"
        for p in files
        if p.is_file() and p.stat().st_size > MAX_BYTES and p.relative_to(ROOT).parts[0] != "weights"
    ]
    assert not large, f"tracked files over 1 MiB outside weights/: {large}"


def test_weights_folder_is_small_and_documented():
    weights = [p for p in tracked_files() if p.relative_to(ROOT).parts[0] == "weights" and p.suffix != ".md"]
    assert sum(p.stat().st_size for p in weights) <= 20 * 2**20
    readme = (ROOT / "weights" / "README.md").read_text()
    for p in weights:
        assert p.name in readme, f"{p.name} is not described in weights/README.md"


def test_readme_is_short():
    assert len((ROOT / "README.md").read_text().splitlines()) <= 250


def test_markdown_links_resolve():
    pages = [p for p in tracked_files() if p.suffix == ".md" and p.is_file()]
    dead = []
    for page in pages:
        for target, _ in LINK.findall(page.read_text()):
            if target.startswith(("http://", "https://", "mailto:")):
                continue
            if not (page.parent / target).exists():
                dead.append(f"{page.relative_to(ROOT)} -> {target}")
    assert not dead, f"links to missing files: {dead}"
