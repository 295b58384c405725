"""The store is the one owner of the artifact layout (the import rules are in ``test_imports.py``).

Scans the source (no imports, no artifacts): a file name of the store, or ``runs`` / ``explanations``
as a path part, written anywhere but ``engine/artifacts.py`` fails the test.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

from engine import artifacts

ROOT = Path(__file__).resolve().parents[1]
SOURCES = sorted(p for folder in ("engine", "dashboard", "painlens", "bench") for p in (ROOT / folder).rglob("*.py"))
# Where a store file name may legitimately appear as a string without naming a store path:
# none today. An entry needs its reason.
ALLOWED: dict[str, str] = {}


def store_names() -> set[str]:
    names = {artifacts.MANIFEST, artifacts.SAMPLES, artifacts.DONE, artifacts.PREDICTIONS, artifacts.HISTORY,
             artifacts.SPLIT, artifacts.KEPT_MODEL, artifacts.HEATMAP_ARRAYS, artifacts.GRADCAM, artifacts.SANITY,
             artifacts.STABILITY,
             *artifacts.TABLES.values()}
    names |= {f"{artifacts.RATINGS}/{name}" for name in artifacts.RATINGS_FILES.values()}
    return names


def string_literals(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return [(node.lineno, node.value) for node in ast.walk(tree)
            if isinstance(node, ast.Constant) and isinstance(node.value, str)]


def test_no_module_but_the_store_names_a_store_file_or_folder():
    names = store_names()
    folder_part = re.compile(r'(\b(runs|explanations)/)|(/(runs|explanations)\b)')
    offences = []
    for path in SOURCES:
        relative = str(path.relative_to(ROOT))
        if relative == "engine/artifacts.py" or relative in ALLOWED:
            continue
        source = path.read_text(encoding="utf-8")
        for line, text in string_literals(path):
            if any(name in text for name in names) or folder_part.search(text):
                offences.append(f"{relative}:{line}: {text[:60]!r}")
        # A path joined with a bare "runs" (store.root / "runs") is a path even without a slash.
        offences += [f"{relative}: joins {m.group(0)!r}" for m in re.finditer(r'/\s*"(runs|explanations|ratings)"', source)]
    assert not offences, "store paths built outside engine/artifacts.py:\n" + "\n".join(offences)


def test_the_store_names_are_found_by_this_check():
    # The check above would catch the layout it guards (so it cannot pass by matching nothing).
    sample = 'folder = root / "runs" / m\nopen(folder / "done.json")'
    assert re.search(r'/\s*"(runs|explanations|ratings)"', sample)
    assert any(name in sample for name in store_names())
