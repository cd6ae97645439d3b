"""The floor plan: only the package face at the top of src/heatbath, every folder named in the
README's Layout, tests mirroring the package, and no test module importing another."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "src" / "heatbath"
FACE = {"__init__.py", "testsystems.py"}


def test_only_the_package_face_is_loose_at_the_top():
    loose = {p.name for p in PACKAGE.glob("*.py")}
    assert loose == FACE, loose - FACE


def test_the_readme_layout_names_every_folder():
    layout = (ROOT / "README.md").read_text().split("## Layout", 1)[1]
    folders = sorted(p.name for p in PACKAGE.iterdir() if (p / "__init__.py").is_file())
    missing = [name for name in folders if f"`{name}/`" not in layout]
    assert not missing, missing


def test_tests_mirror_the_package():
    folders = {p.name for p in PACKAGE.iterdir() if (p / "__init__.py").is_file()}
    test_folders = {p.name for p in (ROOT / "tests").iterdir() if p.is_dir()
                    and p.name != "__pycache__"}
    assert test_folders <= folders, test_folders - folders


def test_no_test_module_imports_another():
    pattern = re.compile(r"^\s*(from|import)\s+(tests\b|test_\w+|conftest)", re.M)
    offenders = [str(p.relative_to(ROOT)) for p in (ROOT / "tests").rglob("*.py")
                 if pattern.search(p.read_text())]
    assert not offenders, offenders
