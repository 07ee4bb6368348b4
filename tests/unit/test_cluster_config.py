"""cluster.yaml passes the checks `ray up` makes before it talks to a cloud (provider defaults,
node types, Ray's JSON schema) and holds what a run needs: a head for sweep trial drivers, CPU
and GPU workers, the package on every node, the MLflow tracking server in Ray's environment."""

import copy
import re
import shutil
import subprocess
from pathlib import Path

import jsonschema
import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
CLUSTER_YAML = REPO / "cluster.yaml"
PACKAGE_DIR = "~/instancehmr"  # where file_mounts put the package on every node


def prepare(raw: dict) -> dict:
    """What `ray up` does offline (ray.autoscaler._private.commands._bootstrap_config): fill in
    the provider's defaults, merge the setup commands, check the schema and node types."""
    from ray.autoscaler._private.util import prepare_config, validate_config

    config = prepare_config(copy.deepcopy(raw))
    validate_config(config)
    return config


@pytest.fixture(scope="module")
def raw() -> dict:
    return yaml.safe_load(CLUSTER_YAML.read_text())


@pytest.fixture(scope="module")
def config(raw) -> dict:
    return prepare(raw)


def test_ray_accepts_the_config(config):
    assert config["provider"]["type"] == "aws" and config["provider"]["region"]
    assert config["head_node_type"] in config["available_node_types"]


def test_head_cpu_and_gpu_node_types(config):
    types = config["available_node_types"]
    head = types[config["head_node_type"]]["resources"]
    assert head.get("trial_driver", 0) >= 1, "sweep trial drivers are placed on `trial_driver`"
    assert head.get("CPU") == 0 and head.get("GPU", 0) == 0, "no data or training work on the head"
    workers = {name: t for name, t in types.items() if name != config["head_node_type"]}
    gpu = [t for t in workers.values() if t["resources"].get("GPU", 0) >= 1]
    cpu = [t for t in workers.values() if t["resources"].get("GPU", 0) == 0]
    assert gpu and all(t["max_workers"] >= 1 and t["resources"].get("CPU", 0) >= 1 for t in gpu)
    assert cpu and all(t["max_workers"] >= 1 and t["resources"].get("CPU", 0) >= 1 for t in cpu)


def test_gpu_nodes_up_for_the_resource_check(config):
    """`instancehmr train` / `sweep` refuse to start with fewer GPUs than the cluster has now
    (ray.cluster_resources(), not what the autoscaler could add): base.yaml's run must fit the
    GPU workers that `ray up` keeps running."""
    base = yaml.safe_load((REPO / "experiments" / "base.yaml").read_text())["scaling"]
    gpus = sum(
        t["min_workers"] * t["resources"].get("GPU", 0)
        for t in config["available_node_types"].values()
    )
    assert gpus >= base["num_workers"]


def test_every_node_installs_the_package(config):
    mounts = config["file_mounts"]
    for remote in ("platform", "pyproject.toml", "README.md"):
        local = mounts[f"{PACKAGE_DIR}/{remote}"]
        assert (REPO / local).exists(), local
    editable = re.compile(r"pip install .*-e \"?(~|\$HOME)/instancehmr\[")
    lists = {"head": config["head_setup_commands"], "workers": config["worker_setup_commands"]}
    for name, t in config["available_node_types"].items():
        if "worker_setup_commands" in t:  # a node type's own list replaces the global one
            lists[name] = t["worker_setup_commands"]
    for name, commands in lists.items():
        assert any(editable.search(c) for c in commands), (
            f"{name}: no `pip install -e` of the package"
        )


@pytest.mark.parametrize("key", ["head_start_ray_commands", "worker_start_ray_commands"])
def test_ray_starts_with_the_tracking_server(config, key):
    (start,) = [c for c in config[key] if "ray start" in c]
    export = re.search(r"export [^;]*\bMLFLOW_TRACKING_URI=https?://\S+", start)
    assert export and export.start() < start.index("ray start"), start


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
def test_commands_are_valid_bash(config):
    """YAML folding and quoting left every command parseable (`bash -n`): what Ray runs."""
    keys = ["setup_commands", "head_setup_commands", "worker_setup_commands"]
    keys += ["head_start_ray_commands", "worker_start_ray_commands"]
    for command in (c for key in keys for c in config[key]):
        done = subprocess.run(["bash", "-n", "-c", command], capture_output=True, text=True)
        assert done.returncode == 0, f"{command}\n{done.stderr}"


def _unknown_top_level_key(raw):
    raw["setup_comands"] = ["echo typo"]


def _unknown_node_type_key(raw):
    raw["available_node_types"]["gpu_worker"]["min_worker"] = 1


def _resource_of_wrong_type(raw):
    raw["available_node_types"]["gpu_worker"]["resources"]["GPU"] = "1"


def _missing_head_type(raw):
    raw["head_node_type"] = "no_such_type"


@pytest.mark.parametrize(
    "breaks, error",
    [
        (_unknown_top_level_key, jsonschema.ValidationError),
        (_unknown_node_type_key, jsonschema.ValidationError),
        (_resource_of_wrong_type, jsonschema.ValidationError),
        (_missing_head_type, ValueError),
    ],
)
def test_a_broken_copy_is_rejected(raw, breaks, error):
    broken = copy.deepcopy(raw)
    breaks(broken)
    with pytest.raises(error):
        prepare(broken)
