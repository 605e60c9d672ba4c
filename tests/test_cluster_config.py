"""cluster.yaml, checked offline the way `ray up` checks it, plus what seqsweep relies on.

`ray up` first merges the file with the provider's defaults (`prepare_config`) and then
validates it against the launcher's JSON schema, ``ray/autoscaler/ray-schema.json``
(`validate_config`); both are Ray's own functions and neither touches the network. What
`ray up` does after that (resolving AWS resources with boto3) needs credentials and is not
run here. The other tests pin what the launcher does not check: an AWS provider, an
autoscaling GPU worker group, the project's dependencies installed at Ray's own version,
and a dashboard on loopback with token authentication.
"""

from __future__ import annotations

import copy
import re
import shlex
from pathlib import Path

import pytest
import ray
import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]
CLUSTER_YAML = ROOT / "cluster.yaml"
SHELL_OPERATORS = {"&&", "||", ";", "|", "(", ")"}


@pytest.fixture(scope="module")
def config() -> dict:
    return yaml.safe_load(CLUSTER_YAML.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def prepared(config) -> dict:
    """The config as `ray up` sees it after merging the provider's defaults."""
    from ray.autoscaler._private.util import prepare_config

    return prepare_config(copy.deepcopy(config))


def _pip_requirements(commands: list[str]) -> list[Requirement]:
    """Every requirement the ``pip install`` invocations among ``commands`` name."""
    found: list[Requirement] = []
    for command in commands:
        lexer = shlex.shlex(command, posix=True, punctuation_chars=";&|()")
        lexer.whitespace_split = True
        tokens = list(lexer)
        for i, token in enumerate(tokens[:-1]):
            if Path(token).name not in ("pip", "pip3") or tokens[i + 1] != "install":
                continue
            skip_next = False
            for arg in tokens[i + 2:]:
                if arg in SHELL_OPERATORS:
                    break
                if skip_next:
                    skip_next = False
                elif arg.startswith("-"):
                    # options that take a value: -r FILE, --index-url URL, ...
                    skip_next = "=" not in arg and arg in ("-r", "-c", "-i", "--index-url",
                                                           "--extra-index-url", "-f", "--find-links")
                else:
                    found.append(Requirement(arg))
    return found


def _project_dependencies() -> list[str]:
    """pyproject.toml's [project.dependencies] (on Python 3.10, without tomllib, the
    installed distribution's metadata, which `pip install -e .` made from it)."""
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        from importlib.metadata import requires

        return [r for r in requires("seqsweep") or [] if "extra ==" not in r]
    return tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]["dependencies"]


def _node_commands(prepared: dict, kind: str) -> list[str]:
    return list(prepared.get("setup_commands", [])) + list(prepared.get(f"{kind}_setup_commands", []))


def _gpu_worker_types(config: dict) -> dict[str, dict]:
    return {name: t for name, t in config["available_node_types"].items()
            if name != config["head_node_type"] and t.get("resources", {}).get("GPU", 0) >= 1}


# ---- Ray's own checks -------------------------------------------------------------------
def test_passes_the_launchers_schema_and_checks(prepared):
    """`ray up`'s offline validation: ray-schema.json + head type / worker count checks."""
    from ray.autoscaler._private.util import validate_config

    validate_config(prepared)  # raises jsonschema.ValidationError / ValueError on a bad file


def test_the_schema_is_really_applied(config):
    """A typo'd key must fail: the validation above is not a no-op."""
    from ray.autoscaler._private.util import prepare_config, validate_config

    bad = copy.deepcopy(config)
    bad["idle_timout_minutes"] = 5
    with pytest.raises(Exception, match="idle_timout_minutes"):
        validate_config(prepare_config(bad))


# ---- what the launcher needs and what the README promises ----------------------------------
def test_aws_provider_and_cluster_name(config):
    assert config["cluster_name"] == "seqsweep"
    assert config["provider"]["type"] == "aws"
    assert config["provider"].get("region")


def test_head_node_type_exists_and_keeps_its_cpus(config):
    head = config["available_node_types"][config["head_node_type"]]
    # the head may run CPU trials: its CPUs must not be hidden from Ray
    assert head["resources"].get("CPU", None) != 0
    assert head["resources"].get("GPU", 0) == 0


def test_autoscaling_gpu_worker_group(config):
    workers = _gpu_worker_types(config)
    assert workers, "a worker type whose resources declare a GPU"
    for name, worker in workers.items():
        assert worker["min_workers"] == 0, name
        assert 1 <= worker["max_workers"] <= config["max_workers"], name
        assert worker["node_config"].get("InstanceType"), name
    assert config["max_workers"] >= 1
    assert config["idle_timeout_minutes"] > 0


def test_every_node_type_names_its_ami(config):
    """Without an ImageId the AWS launcher falls back to its built-in (Ubuntu 18.04) AMI."""
    for name, node_type in config["available_node_types"].items():
        assert node_type["node_config"].get("ImageId"), name


def test_setup_installs_ray_at_this_version_and_every_project_dependency(prepared):
    needed = {canonicalize_name(Requirement(r).name) for r in _project_dependencies()}
    for kind in ("head", "worker"):
        reqs = _pip_requirements(_node_commands(prepared, kind))
        names = {canonicalize_name(r.name) for r in reqs}
        assert {"ray", "torch", "librosa", "optuna", "pyarrow"} <= names, kind
        assert not needed - names, f"{kind} nodes miss {sorted(needed - names)}"
        ray_req = next(r for r in reqs if canonicalize_name(r.name) == "ray")
        assert str(ray_req.specifier) == f"=={ray.__version__}", "pin ray to the driver's version"
        assert {"tune", "default"} <= ray_req.extras


def test_head_can_run_the_autoscaler(prepared):
    names = {canonicalize_name(r.name) for r in _pip_requirements(_node_commands(prepared, "head"))}
    assert "boto3" in names  # the AWS autoscaler on the head launches workers with boto3


def test_head_start_command_keeps_the_dashboard_on_loopback(prepared):
    start = " ".join(prepared["head_start_ray_commands"])
    assert re.search(r"ray start --head\b", start)
    assert "--port=6379" in start
    assert re.search(r"--dashboard-host[= ]127\.0\.0\.1\b", start)
    assert "0.0.0.0" not in start
    assert "--autoscaling-config=~/ray_bootstrap_config.yaml" in start


def test_workers_join_the_head(prepared):
    start = " ".join(prepared["worker_start_ray_commands"])
    assert "ray start --address=$RAY_HEAD_IP:6379" in start


def test_token_authentication_on_every_node(prepared):
    """`ray start` turns token auth on only with RAY_AUTH_MODE=token (or a token already on
    the node); every node gets the same token file and starts in token mode."""
    assert "~/.ray/auth_token" in prepared["file_mounts"]
    for key in ("head_start_ray_commands", "worker_start_ray_commands"):
        starts = [c for c in prepared[key] if "ray start" in c]
        assert starts and all("RAY_AUTH_MODE=token" in c for c in starts), key


def test_pip_requirement_parser():
    reqs = _pip_requirements(['pip install -U pip && pip install "ray[tune]==2.0" --index-url X '
                              'torch; echo done', "python -m pip install 'librosa>=0.10'"])
    assert [str(r) for r in reqs] == ["pip", "ray[tune]==2.0", "torch", "librosa>=0.10"]
