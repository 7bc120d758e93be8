"""The lock files: exact, hashed, in step with pyproject.toml, and checked by scripts/lock."""

from __future__ import annotations

import re
import shutil
import subprocess
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parent.parent
LOCKS = ("requirements.txt", "requirements-dev.txt")
PIN = re.compile(r"^([A-Za-z0-9._-]+)==(\S+) \\$")


def pins(lock: str) -> dict[str, Version]:
    return {
        canonicalize_name(match[1]): Version(match[2])
        for line in (ROOT / lock).read_text().splitlines()
        if (match := PIN.match(line))
    }


def pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def check(root: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["scripts/lock", "--check"], cwd=root, capture_output=True, text=True, timeout=60
    )


@pytest.fixture
def clone(tmp_path) -> Path:
    """The files `scripts/lock --check` reads, in a folder of their own to edit."""
    (tmp_path / "scripts").mkdir()
    shutil.copy(ROOT / "scripts" / "lock", tmp_path / "scripts" / "lock")
    for name in ("pyproject.toml", *LOCKS):
        shutil.copy(ROOT / name, tmp_path / name)
    return tmp_path


def test_the_committed_locks_match_pyproject():
    result = check(ROOT)

    assert result.returncode == 0, result.stderr


def test_a_dependency_added_without_relocking_fails_the_check(clone):
    toml = clone / "pyproject.toml"
    toml.write_text(toml.read_text().replace('"gunicorn>=23",', '"gunicorn>=23",\n    "rich",'))

    result = check(clone)

    assert result.returncode == 1
    assert "run scripts/lock" in result.stderr


def test_a_changed_dev_tool_or_build_requirement_fails_the_check(clone):
    toml = clone / "pyproject.toml"
    original = toml.read_text()
    for old, new in [('"ruff>=0.6"', '"ruff>=0.7"'), ('"setuptools>=68"', '"setuptools>=70"')]:
        toml.write_text(original.replace(old, new))

        assert check(clone).returncode == 1, new


def test_comments_and_the_bench_extra_leave_the_locks_valid(clone):
    toml = clone / "pyproject.toml"
    toml.write_text(
        toml.read_text()
        .replace("[project.optional-dependencies]", "# a note\n[project.optional-dependencies]")
        .replace('"aiosmtpd>=1.4",', '"aiosmtpd>=1.4",\n    "py-spy",')
    )

    assert check(clone).returncode == 0


@pytest.mark.parametrize("lock", LOCKS)
def test_every_pin_is_exact_and_carries_hashes(lock):
    lines = (ROOT / lock).read_text().splitlines()
    requirements = [i for i, line in enumerate(lines) if line[:1].isalnum()]

    assert requirements
    for i in requirements:
        assert PIN.match(lines[i]), lines[i]
        assert lines[i + 1].strip().startswith("--hash=sha256:"), lines[i]


@pytest.mark.parametrize(
    ("lock", "wanted"),
    [
        ("requirements.txt", pyproject()["project"]["dependencies"]),
        (
            "requirements-dev.txt",
            pyproject()["project"]["dependencies"]
            + pyproject()["project"]["optional-dependencies"]["dev"]
            + pyproject()["build-system"]["requires"],
        ),
    ],
)
def test_every_requirement_of_pyproject_is_pinned_to_a_version_it_allows(lock, wanted):
    pinned = pins(lock)

    for line in wanted:
        requirement = Requirement(line)
        name = canonicalize_name(requirement.name)
        assert name in pinned, line
        assert requirement.specifier.contains(pinned[name], prereleases=True), line


def test_production_and_tests_run_the_same_versions():
    runtime, dev = pins("requirements.txt"), pins("requirements-dev.txt")

    assert {name: dev.get(name) for name in runtime} == runtime


def test_pip_and_setuptools_are_locked_to_current_releases():
    dev = pins("requirements-dev.txt")

    assert dev["setuptools"] >= Version("68")
    assert pins("requirements.txt")["setuptools"] == dev["setuptools"]
    assert dev["pip"] >= Version("24")
