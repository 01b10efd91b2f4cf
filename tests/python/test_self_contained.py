"""The repository is self-contained: no tracked file points outside it into the design notes
that the project was started from (what a reader needs lives in docs/: architecture.md,
sources.md)."""
import pathlib
import re
import subprocess

ROOT = pathlib.Path(__file__).resolve().parents[2]
# The parent folder's "shared" design notes, with or without the leading "../". Spelled in
# pieces so that this file does not match itself.
OUTSIDE = re.compile("|".join([r"\.\./" + "shared", "shared/" + "(design|reference|validation)/"]))


def _tracked_files():
    out = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True)
    return [ROOT / p for p in out.stdout.decode().split("\0") if p]


def test_no_tracked_file_points_outside_the_repository():
    hits = []
    for path in _tracked_files():
        try:
            text = path.read_text(encoding="utf-8")
        except (UnicodeDecodeError, FileNotFoundError, IsADirectoryError):
            continue  # binary files, and files deleted in the working tree
        for n, line in enumerate(text.splitlines(), 1):
            if OUTSIDE.search(line):
                hits.append(f"{path.relative_to(ROOT)}:{n}: {line.strip()[:100]}")
    assert not hits, "paths outside the repository (point at docs/ instead):\n" + "\n".join(hits)


def test_the_pattern_catches_what_it_should():
    assert OUTSIDE.search("see ../" + "shared" + "/notes.md")
    assert OUTSIDE.search("see " + "shared/" + "design/ARCHITECTURE.md")
    assert OUTSIDE.search("in shared/" + "reference/trainium.md")
    assert not OUTSIDE.search("shared_hbm and std::shared_ptr")
