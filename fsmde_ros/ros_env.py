"""Environment of every ROS 2 process of the project: loopback-only Fast DDS and a private domain.

Tests, benchmarks and the demo never let DDS traffic leave the host: they run with the shipped
profile ``config/fastdds_localhost.xml`` (shared memory + UDPv4 whitelisted to 127.0.0.1, builtin
transports off, initial peer 127.0.0.1) and a ``ROS_DOMAIN_ID`` of their own, leased with an
exclusive file lock so that concurrent test runs, benchmarks and demos on one machine never see
each other's topics.

``ROS_AUTOMATIC_DISCOVERY_RANGE`` is set to ``SYSTEM_DEFAULT`` so that rmw_fastrtps leaves the
transports to the profile. Measured with rmw_fastrtps_cpp 9.3 / Fast DDS 3.2: ``LOCALHOST`` makes the
rmw add transports of its own, and the process then holds UDP sockets bound to the machine's network
interface (besides 127.0.0.1); with ``SYSTEM_DEFAULT`` (or ``SUBNET``) and this profile every socket
is bound to 127.0.0.1 (or joined to the discovery multicast group on the loopback interface only).

Set the environment before ``rclpy.init()`` in this process (``apply``) or pass it to child
processes (``loopback_env``).
"""

from __future__ import annotations

import fcntl
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path

PROFILE_NAME = "fastdds_localhost.xml"
DOMAIN_RANGE = range(11, 100)
"""Domain ids the project leases; 0-10 are left to the user's own systems (0 is the ROS default)."""


class RosEnvError(RuntimeError):
    """The loopback profile is missing or no ROS domain id is free."""


def profile_path() -> Path:
    """The shipped loopback Fast DDS profile, from the source tree or the installed share."""
    here = Path(__file__).resolve().parent.parent / "config" / PROFILE_NAME
    if here.is_file():
        return here
    from ament_index_python.packages import get_package_share_directory  # only in an installed ROS package

    installed = Path(get_package_share_directory("fsmde_ros")) / "config" / PROFILE_NAME
    if not installed.is_file():
        raise RosEnvError(f"{installed}: loopback Fast DDS profile not found")
    return installed


def loopback_env(domain_id: int, base: Mapping[str, str] | None = None) -> dict[str, str]:
    """``base`` (default: this process's environment) with the loopback DDS settings and ``domain_id``."""
    if not 0 <= domain_id <= 232:
        raise RosEnvError(f"ROS_DOMAIN_ID {domain_id} is out of range 0-232")
    env = dict(os.environ if base is None else base)
    env.update(
        RMW_IMPLEMENTATION="rmw_fastrtps_cpp",
        FASTDDS_DEFAULT_PROFILES_FILE=str(profile_path()),
        ROS_AUTOMATIC_DISCOVERY_RANGE="SYSTEM_DEFAULT",
        ROS_DOMAIN_ID=str(domain_id),
    )
    env.pop("ROS_STATIC_PEERS", None)
    env.pop("ROS_LOCALHOST_ONLY", None)
    env.pop("FASTRTPS_DEFAULT_PROFILES_FILE", None)
    return env


def apply(domain_id: int) -> None:
    """Put the loopback DDS settings into this process's environment (before ``rclpy.init()``)."""
    wanted = loopback_env(domain_id)
    for key in ("ROS_STATIC_PEERS", "ROS_LOCALHOST_ONLY", "FASTRTPS_DEFAULT_PROFILES_FILE"):
        os.environ.pop(key, None)
    os.environ.update({k: v for k, v in wanted.items() if os.environ.get(k) != v})


class DomainLease:
    """An exclusive ROS_DOMAIN_ID for as long as the lease is held (a lock file per id in the temp dir).

    Use as a context manager or call ``release()``; a crashed holder's lock is freed by the kernel.
    """

    def __init__(self, lock_dir: str | Path | None = None) -> None:
        self._dir = Path(lock_dir or tempfile.gettempdir())
        self._fd: int | None = None
        self.domain_id = -1
        for candidate in DOMAIN_RANGE:
            fd = os.open(self._dir / f"fsmde_ros_domain_{candidate}.lock", os.O_CREAT | os.O_RDWR, 0o666)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                os.close(fd)
                continue
            self._fd, self.domain_id = fd, candidate
            return
        raise RosEnvError(f"no free ROS_DOMAIN_ID in {DOMAIN_RANGE.start}-{DOMAIN_RANGE.stop - 1}")

    def env(self, base: Mapping[str, str] | None = None) -> dict[str, str]:
        """Environment for a child process on this lease's domain."""
        return loopback_env(self.domain_id, base)

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> DomainLease:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()
