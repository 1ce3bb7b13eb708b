"""Reading and writing rosbag2 files (mcap or sqlite3) with the ``rosbags`` library, no ROS install needed.

Messages are handled as raw CDR bytes (what ``rclpy`` publishes and receives with ``raw=True``) or as
typestore messages of ``fsmde_ros.bagio.messages.TYPESTORE``.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

from rosbags.interfaces import Connection
from rosbags.rosbag2 import Reader, ReaderError, StoragePlugin, Writer, WriterError

from fsmde_ros.bagio.messages import TYPESTORE

STORAGES = {"mcap": StoragePlugin.MCAP, "sqlite3": StoragePlugin.SQLITE3}
BAG_VERSION = 9
"""rosbag2 metadata version written (the one of Jazzy and Kilted)."""


class BagError(RuntimeError):
    """A bag cannot be opened, read or written; the message names the path and the problem."""


class BagMessage(NamedTuple):
    """One recorded message: its topic, ROS type name (pkg/msg/Type), log time and CDR payload."""

    topic: str
    msgtype: str
    stamp_ns: int
    data: bytes


@dataclass(frozen=True)
class BagInfo:
    """What a bag holds."""

    path: Path
    topics: dict[str, tuple[str, int]]  # topic -> (msgtype, message count)
    start_ns: int
    end_ns: int
    message_count: int

    @property
    def duration_s(self) -> float:
        return (self.end_ns - self.start_ns) / 1e9


def _open_reader(path: str | Path) -> Reader:
    path = Path(path)
    if not path.exists():
        raise BagError(f"{path}: bag not found")
    try:
        reader = Reader(path)
        reader.open()
    except (ReaderError, OSError, ValueError, KeyError) as exc:
        raise BagError(f"{path}: not a readable rosbag2 ({exc})") from exc
    return reader


def bag_info(path: str | Path) -> BagInfo:
    """Topics, types, message counts and time span of a bag directory (or a single .mcap/.db3 file)."""
    reader = _open_reader(path)
    try:
        topics = {c.topic: (c.msgtype, c.msgcount) for c in reader.connections}
        return BagInfo(Path(path), topics, reader.start_time, reader.end_time, reader.message_count)
    finally:
        reader.close()


def read_messages(path: str | Path, topics: Iterable[str] | None = None, start_ns: int | None = None,
                  stop_ns: int | None = None) -> Iterator[BagMessage]:
    """Messages of ``topics`` (all when None) with start_ns <= log time < stop_ns, in log-time order.

    Each storage file is read in log-time order; the files of a split bag follow one another in time.
    """
    reader = _open_reader(path)
    try:
        wanted = None if topics is None else set(topics)
        if wanted is not None:
            missing = wanted - {c.topic for c in reader.connections}
            if missing:
                raise BagError(f"{path}: no topic(s) {sorted(missing)} in the bag; it has "
                               f"{sorted({c.topic for c in reader.connections})}")
        connections = [c for c in reader.connections if wanted is None or c.topic in wanted]
        if not connections:
            return
        try:
            for connection, stamp_ns, data in reader.messages(connections, start_ns, stop_ns):
                yield BagMessage(connection.topic, connection.msgtype, stamp_ns, bytes(data))
        except ReaderError as exc:
            raise BagError(f"{path}: corrupt bag ({exc})") from exc
    finally:
        reader.close()


def deserialize(message: BagMessage) -> object:
    """The typestore message of a recorded one."""
    if message.msgtype not in TYPESTORE.types:
        raise BagError(f"{message.topic}: type {message.msgtype} is not in the ROS 2 Kilted typestore")
    return TYPESTORE.deserialize_cdr(message.data, message.msgtype)


class BagWriter:
    """Writes a new rosbag2 directory; topics are added on first use. Use as a context manager."""

    def __init__(self, path: str | Path, storage: str = "mcap") -> None:
        if storage not in STORAGES:
            raise BagError(f"{path}: unknown storage {storage!r}; choose one of {sorted(STORAGES)}")
        self.path = Path(path)
        if self.path.exists():
            raise BagError(f"{self.path}: already exists; rosbag2 writes a new directory")
        self._writer = Writer(self.path, version=BAG_VERSION, storage_plugin=STORAGES[storage])
        self._connections: dict[str, Connection] = {}
        self._open = False

    def __enter__(self) -> BagWriter:
        self.open()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def open(self) -> None:
        try:
            self._writer.open()
        except (WriterError, OSError) as exc:
            raise BagError(f"{self.path}: cannot create the bag ({exc})") from exc
        self._open = True

    def close(self) -> None:
        if self._open:
            self._writer.close()
            self._open = False

    def _connection(self, topic: str, msgtype: str) -> Connection:
        connection = self._connections.get(topic)
        if connection is None:
            if msgtype not in TYPESTORE.types:
                raise BagError(f"{self.path}: topic {topic}: type {msgtype} is not in the ROS 2 Kilted "
                               "typestore")
            connection = self._writer.add_connection(topic, msgtype, typestore=TYPESTORE)
            self._connections[topic] = connection
        elif connection.msgtype != msgtype:
            raise BagError(f"{self.path}: topic {topic} already carries {connection.msgtype}, not {msgtype}")
        return connection

    def write_raw(self, topic: str, msgtype: str, stamp_ns: int, data: bytes | memoryview) -> None:
        """Write one CDR-serialized message with log time ``stamp_ns``."""
        if not self._open:
            raise BagError(f"{self.path}: writer is not open")
        self._writer.write(self._connection(topic, msgtype), int(stamp_ns), data)

    def write(self, topic: str, msg: object, stamp_ns: int) -> None:
        """Serialize and write one typestore message with log time ``stamp_ns``."""
        msgtype = msg.__msgtype__
        self.write_raw(topic, msgtype, stamp_ns, TYPESTORE.serialize_cdr(msg, msgtype))
