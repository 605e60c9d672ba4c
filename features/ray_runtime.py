"""Connect to Ray once: the embedded local instance by default, a cluster when asked.

Every room that runs work on Ray (extraction here, sweeps in `search`) calls
`ensure_ray`, so there is one place that decides where the work goes and how the
dashboard is exposed.
"""

from __future__ import annotations

import os

__all__ = ["ensure_ray", "DEFAULT_DASHBOARD_HOST"]

#: The dashboard listens on loopback only unless the user says otherwise.
DEFAULT_DASHBOARD_HOST = "127.0.0.1"


def ensure_ray(
    address: str | None = None,
    *,
    dashboard_host: str = DEFAULT_DASHBOARD_HOST,
    include_dashboard: bool = True,
    num_cpus: int | None = None,
) -> str | None:
    """Make sure this process is connected to Ray and return the dashboard URL (or None).

    If Ray is already initialised (a test session, a notebook, an earlier call) it is
    used as it is. Otherwise ``address`` or ``$RAY_ADDRESS`` names a cluster to join;
    with neither, a local instance starts with its dashboard bound to
    ``dashboard_host`` (127.0.0.1 by default, so nothing outside this machine reaches it).
    """
    import ray

    if not ray.is_initialized():
        address = address or os.environ.get("RAY_ADDRESS") or None
        if address:
            ctx = ray.init(address=address, log_to_driver=True)
        else:
            ctx = ray.init(
                address="local",  # our own instance, never a Ray someone left running here
                num_cpus=num_cpus,
                include_dashboard=include_dashboard,
                dashboard_host=dashboard_host,
                log_to_driver=True,
            )
        url = getattr(ctx, "dashboard_url", None)
    else:
        url = ray.get_runtime_context().worker.node.address_info.get("webui_url") if include_dashboard else None
    if url and not url.startswith("http"):
        url = "http://" + url
    return url or None
