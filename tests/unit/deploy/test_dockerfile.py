"""Dockerfile and .dockerignore, checked as text (no Docker engine where the tests run)."""

from __future__ import annotations

import fnmatch
import json
import re

from tests.unit.deploy.conftest import ROOT

DOCKERFILE = ROOT / "Dockerfile"


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with line continuations joined and comments dropped."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    out = []
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        keyword, _, rest = stripped.partition(" ")
        out.append((keyword.upper(), rest.strip()))
    return out


def final_stage() -> list[tuple[str, str]]:
    steps = instructions()
    last_from = max(i for i, (k, _) in enumerate(steps) if k == "FROM")
    return steps[last_from:]


def ignored(path: str) -> bool:
    patterns = [
        p.strip()
        for p in (ROOT / ".dockerignore").read_text().splitlines()
        if p.strip() and not p.startswith("#")
    ]
    result = False
    for pattern in patterns:
        negate = pattern.startswith("!")
        pattern = pattern.lstrip("!")
        if fnmatch.fnmatch(path, pattern) or path.startswith(pattern.rstrip("/") + "/"):
            result = not negate
    return result


def test_given_the_image_when_built_then_it_runs_python_311_slim_as_a_fixed_non_root_uid() -> None:
    stage = final_stage()

    assert stage[0] == ("FROM", "python:3.11-slim")
    users = [arg for k, arg in stage if k == "USER"]
    assert users, "no USER: the processes would run as root"
    uid = users[-1].split(":")[0]
    assert uid.isdigit() and int(uid) >= 1000, "numeric uid so runAsNonRoot can verify it"
    assert any(k == "RUN" and f"--uid {uid}" in arg for k, arg in stage)


def test_given_the_image_when_started_then_tini_execs_the_entrypoint_which_takes_a_role() -> None:
    stage = final_stage()
    entrypoint = json.loads(next(arg for k, arg in stage if k == "ENTRYPOINT"))
    cmd = json.loads(next(arg for k, arg in stage if k == "CMD"))

    # Exec (JSON) form: no /bin/sh -c wrapper between Docker and the process.
    assert entrypoint == ["tini", "--", "hyperwatch-entrypoint"]
    assert cmd == ["worker"]
    assert any(k == "RUN" and "install" in arg and "tini" in arg for k, arg in stage)
    copies = [arg for k, arg in stage if k == "COPY"]
    assert any(
        "deploy/docker/entrypoint.sh /usr/local/bin/hyperwatch-entrypoint" in c for c in copies
    )


def test_given_the_image_when_built_then_the_project_and_flowerconfig_are_installed() -> None:
    steps = instructions()
    assert any(k == "RUN" and re.search(r"pip install (--no-deps )?\.$", arg) for k, arg in steps)
    stage = final_stage()
    workdir = [arg for k, arg in stage if k == "WORKDIR"][-1]
    assert workdir == "/app"
    assert any(k == "COPY" and arg.startswith("flowerconfig.py") for k, arg in stage)
    assert any(k == "ENV" and "DATA_DIR=/var/lib/hyperwatch" in arg for k, arg in stage)


def test_given_every_copy_when_building_then_its_source_exists_and_is_in_the_context() -> None:
    for keyword, arg in instructions():
        if keyword != "COPY" or "--from=" in arg:
            continue
        sources = [part for part in arg.split() if not part.startswith("--")][:-1]
        for source in sources:
            assert (ROOT / source).exists(), source
            assert not ignored(source), f"{source} is excluded by .dockerignore"


def test_given_the_build_context_when_sent_then_secrets_and_local_state_stay_out() -> None:
    for path in (".env", ".env.production", "var", ".venv", ".git", "tests"):
        assert ignored(path), path
    assert not ignored(".env.example")


def test_given_the_image_when_dependencies_install_then_they_take_the_constraints() -> None:
    # The same exact versions as `make install` and CI (constraints.txt); the project itself
    # then goes in without dependencies, so nothing is resolved outside the constraints.
    steps = instructions()
    installs = [(i, arg) for i, (k, arg) in enumerate(steps) if k == "RUN" and "pip install" in arg]
    dependency_installs = [(i, arg) for i, arg in installs if "--no-deps" not in arg]
    assert dependency_installs, "no dependency install"
    copied_at = min(
        i for i, (k, arg) in enumerate(steps) if k == "COPY" and "constraints.txt" in arg.split()
    )
    for i, arg in dependency_installs:
        assert re.search(r"(-c|--constraint) constraints\.txt\b", arg), arg
        assert copied_at < i, "constraints.txt is copied after the install that needs it"
    assert any(re.search(r"pip install --no-deps \.$", arg) for _, arg in installs)
