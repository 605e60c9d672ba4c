"""Connect to Ray once: the embedded local instance by default, a cluster when asked.

Every room that runs work on Ray (extraction here, sweeps in `search`) calls
`ensure_ray`, so there is one place that decides where the work goes and how the
dashboard is exposed.

**A job's working directory on a machine with several nodes.** A driver started by
``ray job submit --working-dir .`` runs inside the node's copy of the uploaded directory,
``<session>/runtime_resources/working_dir_files/_ray_pkg_<hash>``. Nodes started with
``ray start`` on one machine share one session folder, and so one such copy, but each
node's runtime-env agent keeps its own record of what it has installed: when the job
connects, every other node's agent finds the folder "not installed by me", deletes it and
unpacks it again (Ray 2.60 installs a job's ``working_dir`` eagerly on every node, and
overwrites on a cache miss). The driver is left in a deleted directory: ``os.getcwd()``
fails, relative paths no longer resolve, and importing torch then kills the process,
because the oneMKL bundled in ``libtorch_cpu.so`` calls ``getcwd()`` in its load-time
constructor and turns the failure into ``Intel oneMKL FATAL ERROR: Cannot load
.../libtorch_cpu.so`` and ``exit(2)``. `ensure_ray` therefore has each node that shares
this driver's session folder install the job's environment now (a no-op task pinned to
it) and then re-enters the directory by its path (`settle_working_dir`). On a cluster of
separate machines, or when each local node has its own ``--temp-dir``, there is nothing
to settle and nothing is run.

**A Ray of our own stays on loopback.** On Linux Ray gives a new node the machine's
outward address and turns a loopback ``--node-ip-address`` back into it
(``ray._private.services.resolve_ip_for_localhost``), so a local instance would listen on,
and talk through, an interface other machines reach. Ray's one switch for a single-node
instance on 127.0.0.1 is the variable it reads for its Windows and macOS builds,
``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0``: with it the node's address is 127.0.0.1, every
Ray process listens on loopback only, and ``ray start`` refuses to add a second node.
`init_local_ray` sets it for every instance seqsweep starts by itself; an address the user
names (``--address``, ``$RAY_ADDRESS``) is joined as it is.
"""

from __future__ import annotations

import os
import sys
from typing import Any

__all__ = ["ensure_ray", "init_local_ray", "pin_loopback", "settle_working_dir", "DEFAULT_DASHBOARD_HOST", "LOOPBACK_ENV"]

#: The dashboard listens on loopback only unless the user says otherwise.
DEFAULT_DASHBOARD_HOST = "127.0.0.1"

#: Ray's switch between a single-node instance on 127.0.0.1 ("0") and a node that other
#: machines can join (its default on Linux).
LOOPBACK_ENV = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"

#: How long to wait for the other nodes to install the job's working directory.
SETTLE_TIMEOUT_S = 120.0


def _cwd() -> str | None:
    """This process's working directory by path, also when it has been deleted."""
    try:
        return os.getcwd()
    except FileNotFoundError:
        return os.environ.get("PWD")


def _session_dir(node: dict) -> str | None:
    # a node's plasma socket lives in <session>/sockets/: its session folder, which holds
    # the runtime_resources/ its agent installs working directories into
    socket = node.get("ObjectStoreSocketName") or ""
    return os.path.realpath(os.path.dirname(os.path.dirname(socket))) if socket else None


def settle_working_dir(cwd: str | None, *, timeout: float = SETTLE_TIMEOUT_S) -> list[str]:
    """Make this driver's working directory ``cwd`` safe from the other nodes of its machine.

    When ``cwd`` is a job's working directory unpacked under this node's session folder and
    other live nodes share that folder (several ``ray start`` on one machine), run a no-op
    task on each of them, so that their agents have installed the job's environment (and
    will not replace the folder again while the job runs), then ``chdir`` to ``cwd``, a
    fresh directory at the same path if the old one was deleted. Returns the node ids it
    waited for (none in the usual case of one node per machine)."""
    import ray
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    if not cwd:
        return []
    nodes = [n for n in ray.nodes() if n.get("Alive")]
    me = ray.get_runtime_context().get_node_id()
    session = next((_session_dir(n) for n in nodes if n.get("NodeID") == me), None)
    if not session or not os.path.realpath(cwd).startswith(os.path.join(session, "runtime_resources") + os.sep):
        return []
    peers = [n["NodeID"] for n in nodes if n.get("NodeID") != me and _session_dir(n) == session]
    if peers:
        def installed() -> bool:  # a worker of this job on that node: its agent has installed the job's env
            return True

        touch = ray.remote(num_cpus=0, max_retries=0)(installed)
        refs = [touch.options(scheduling_strategy=NodeAffinitySchedulingStrategy(node_id, soft=False)).remote()
                for node_id in peers]
        try:
            ray.get(refs, timeout=timeout)
        except Exception as exc:  # a node that died or hangs: go on, the re-entry below still helps
            print(f"warning: {len(peers)} other Ray node(s) on this machine did not confirm the job's "
                  f"working directory within {timeout:.0f} s ({type(exc).__name__}: {exc})", file=sys.stderr)
    if os.path.isdir(cwd):
        os.chdir(cwd)
    return peers


def init_local_ray(**init_kwargs: Any) -> Any:
    """Start a new local Ray instance of our own on 127.0.0.1 and return ``ray.init``'s context.

    ``init_kwargs`` go to ``ray.init`` (``num_cpus``, ``include_dashboard``, ...); the
    address is always ``"local"``: a new instance, never one someone left running here.
    The instance's processes inherit `LOOPBACK_ENV`; this process reads it too, although Ray
    has already read it if ``ray`` was imported before (it keeps the value in
    ``ray._private.ray_constants.ENABLE_RAY_CLUSTER``, which is set to match).
    """
    pin_loopback()
    import ray

    return ray.init(address="local", **init_kwargs)


def pin_loopback() -> None:
    """Make the Ray nodes this process starts from now on single-node instances on 127.0.0.1:
    sets `LOOPBACK_ENV` for the processes they start and, where Ray is already imported,
    the value Ray read from it then. A driver that later joins a cluster started the same
    way (``ray.cluster_utils.Cluster`` in a test) inherits it and stays on loopback too."""
    os.environ[LOOPBACK_ENV] = "0"
    constants = sys.modules.get("ray._private.ray_constants")
    if constants is not None:
        constants.ENABLE_RAY_CLUSTER = False


def _job_config(job_name: str | None) -> Any:
    from ray.job_config import JobConfig

    return JobConfig(metadata={"job_name": job_name}) if job_name else None


def ensure_ray(
    address: str | None = None,
    *,
    dashboard_host: str = DEFAULT_DASHBOARD_HOST,
    include_dashboard: bool = True,
    num_cpus: int | None = None,
    job_name: str | None = None,
) -> str | None:
    """Make sure this process is connected to Ray and return the dashboard URL (or None).

    If Ray is already initialised (a test session, a notebook, an earlier call) it is
    used as it is. Otherwise ``address`` or ``$RAY_ADDRESS`` names a cluster to join;
    with neither, a local instance starts on 127.0.0.1 (`init_local_ray`) with its dashboard
    bound to ``dashboard_host`` (127.0.0.1 by default, so nothing outside this machine reaches it).
    A job driver that joins a cluster has its working directory settled first (see the
    module's docstring and `settle_working_dir`). ``job_name`` is what the dashboard's Jobs
    page shows for this driver (its ``job_name`` metadata; a job submitted with
    ``--metadata-json`` keeps the name it was given).
    """
    import ray

    if not ray.is_initialized():
        address = address or os.environ.get("RAY_ADDRESS") or None
        if address:  # the user's cluster, joined as Ray's defaults say
            cwd = _cwd()
            ctx = ray.init(address=address, log_to_driver=True, job_config=_job_config(job_name))
            settle_working_dir(cwd)
        else:
            ctx = init_local_ray(num_cpus=num_cpus, include_dashboard=include_dashboard,
                                 dashboard_host=dashboard_host, log_to_driver=True,
                                 job_config=_job_config(job_name))
        url = getattr(ctx, "dashboard_url", None)
    else:
        url = ray.get_runtime_context().worker.node.address_info.get("webui_url") if include_dashboard else None
    if url and not url.startswith("http"):
        url = "http://" + url
    return url or None
