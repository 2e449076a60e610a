"""The ``db_tars`` tables the registry touches, as SQLAlchemy Core metadata.

Column names, types, defaults and keys follow TarsFramework's ``db_tars.sql`` (HEAD), so an
existing ``db_tars``, TarsWeb and the C++ registry keep working beside ours. MySQL/MariaDB get the
exact MySQL types (ENUMs, ``TIMESTAMP ... ON UPDATE CURRENT_TIMESTAMP``, ``LONGTEXT``, unsigned
ints) through :meth:`~sqlalchemy.types.TypeEngine.with_variant`; SQLite gets portable equivalents.

Additions of ours:

* ``t_server_conf.metrics_port`` (as K8STARS adds it), ``pod_name``/``pod_uid`` on
  ``t_server_conf`` and ``t_node_info`` (pod identity, K8STARS #14);
* ``t_k8stars_change``: a change log (auto-increment id, written in the same transaction as every
  registration and every deletion of server or adapter rows) through which registry replicas see
  each other's registrations and deletions without rescanning a time window.

SQLite has no ``ON UPDATE CURRENT_TIMESTAMP``: the store sets every such column explicitly from
database time in each write, on every database (so both behave alike). Datetimes are stored on
SQLite in ``CURRENT_TIMESTAMP``'s own format (``YYYY-MM-DD HH:MM:SS``), so values written by the
database and bound parameters compare correctly as text.

:func:`ensure_schema` creates missing tables and adds missing columns (never drops anything), so a
TarsFramework v2.4.3 ``db_tars`` (no ``flow_state``, no ``metrics_port``) keeps working.
"""

from __future__ import annotations

import warnings
from typing import Any

from sqlalchemy import (
    CHAR,
    BigInteger,
    Column,
    DateTime,
    Engine,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    inspect,
    text,
)
from sqlalchemy.dialects import mysql, sqlite
from sqlalchemy.exc import DBAPIError, SAWarning
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.schema import CreateColumn, CreateTable
from sqlalchemy.sql.compiler import DDLCompiler
from sqlalchemy.types import TypeEngine

__all__ = [
    "DATETIME",
    "NODE_STATES",
    "SERVER_STATES",
    "SERVER_TYPES",
    "TIMESTAMP",
    "ensure_schema",
    "metadata",
    "t_adapter_conf",
    "t_config_files",
    "t_group_priority",
    "t_k8stars_change",
    "t_node_info",
    "t_registry_info",
    "t_server_conf",
    "t_server_group_rule",
]

_MYSQL = ("mysql", "mariadb")
_ON_UPDATE = "k8stars_on_update_current_timestamp"

#: ``present_state`` values of ``t_server_conf``.
SERVER_STATES = ("active", "inactive", "activating", "deactivating", "destroyed")
#: ``setting_state``/``present_state`` values of ``t_node_info`` and ``t_registry_info``.
NODE_STATES = ("active", "inactive")
SERVER_TYPES = ("tars_cpp", "not_tars", "tars_java", "tars_nodejs", "tars_php", "tars_go")

_SQLITE_DATETIME = sqlite.DATETIME(  # type: ignore[no-untyped-call]
    storage_format="%(year)04d-%(month)02d-%(day)02d %(hour)02d:%(minute)02d:%(second)02d",
    regexp=r"(\d+)-(\d+)-(\d+)[ T](\d+):(\d+):(\d+)",
)
#: MySQL ``timestamp`` (1 s resolution); SQLite text in CURRENT_TIMESTAMP's format.
TIMESTAMP: TypeEngine[Any] = (
    DateTime().with_variant(mysql.TIMESTAMP(), *_MYSQL).with_variant(_SQLITE_DATETIME, "sqlite")
)
#: MySQL ``datetime`` (1 s resolution); SQLite text in CURRENT_TIMESTAMP's format.
DATETIME: TypeEngine[Any] = (
    DateTime().with_variant(mysql.DATETIME(), *_MYSQL).with_variant(_SQLITE_DATETIME, "sqlite")
)


def _enum(*values: str) -> TypeEngine[Any]:
    """A MySQL ENUM; a plain VARCHAR elsewhere (the store validates values before writing)."""
    return String(max(len(v) for v in values)).with_variant(mysql.ENUM(*values), *_MYSQL)


def _longtext() -> TypeEngine[Any]:
    return Text().with_variant(mysql.LONGTEXT(), *_MYSQL)


def _uint() -> TypeEngine[Any]:
    return Integer().with_variant(mysql.INTEGER(unsigned=True), *_MYSQL)


def _auto_timestamp(name: str) -> Column[Any]:
    """``timestamp DEFAULT CURRENT_TIMESTAMP ON UPDATE CURRENT_TIMESTAMP`` (the ON UPDATE part on
    MySQL/MariaDB only; the store always sets the column itself)."""
    return Column(
        name, TIMESTAMP, server_default=text("CURRENT_TIMESTAMP"), info={_ON_UPDATE: True}
    )


@compiles(CreateColumn, "mysql")
@compiles(CreateColumn, "mariadb")
def _create_column_mysql(element: CreateColumn, compiler: DDLCompiler, **kw: Any) -> str:
    spec = compiler.visit_create_column(element, **kw)  # type: ignore[no-untyped-call]
    if spec is not None and element.element.info.get(_ON_UPDATE):
        spec += " ON UPDATE CURRENT_TIMESTAMP"
    return str(spec)


class _CreateTableWithKeys(CreateTable):
    """CREATE TABLE with the table's indexes inline (``KEY name (cols)``) on MySQL/MariaDB, as
    TarsFramework's DDL has them: one statement instead of one ALTER per index."""


@compiles(_CreateTableWithKeys, "mysql")
@compiles(_CreateTableWithKeys, "mariadb")
def _create_table_with_keys(element: _CreateTableWithKeys, compiler: DDLCompiler, **kw: Any) -> str:
    ddl = str(compiler.visit_create_table(element, **kw))  # type: ignore[no-untyped-call]
    table = element.element
    preparer = compiler.preparer
    keys = [
        f"\tKEY {preparer.quote(str(index.name))} "
        f"({', '.join(preparer.quote(c.name) for c in index.columns)})"
        for index in sorted(table.indexes, key=lambda i: str(i.name))
        if not index.unique
    ]
    if not keys:
        return ddl
    end = ddl.rfind("\n)")
    if end < 0:  # pragma: no cover - the compiler's layout is stable
        raise AssertionError("unexpected CREATE TABLE layout")
    return ddl[:end] + ", \n" + ", \n".join(keys) + ddl[end:]


_TABLE_KW: dict[str, Any] = {
    "mysql_engine": "InnoDB",
    "mysql_charset": "utf8",
    "sqlite_autoincrement": True,
}

metadata = MetaData()

t_adapter_conf = Table(
    "t_adapter_conf",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("application", String(50), server_default=""),
    Column("server_name", String(128), server_default=""),
    Column("node_name", String(50), server_default=""),
    Column("adapter_name", String(100), server_default=""),
    _auto_timestamp("registry_timestamp"),
    Column("thread_num", Integer, server_default="1"),
    Column("endpoint", String(128), server_default=""),
    Column("max_connections", Integer, server_default="1000"),
    Column("allow_ip", String(255), nullable=False, server_default=""),
    Column("servant", String(128), server_default=""),
    Column("queuecap", Integer),
    Column("queuetimeout", Integer),
    Column("posttime", DATETIME),
    Column("lastuser", String(30)),
    Column("protocol", String(64), server_default="tars"),
    Column("handlegroup", String(64), server_default=""),
    UniqueConstraint("application", "server_name", "node_name", "adapter_name", name="application"),
    Index("adapter_conf_endpoint_index", "endpoint"),
    Index("index_regtime_1", "registry_timestamp"),
    **_TABLE_KW,
)

t_config_files = Table(
    "t_config_files",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("server_name", String(128), server_default=""),
    Column("set_name", String(16), nullable=False, server_default=""),
    Column("set_area", String(16), nullable=False, server_default=""),
    Column("set_group", String(16), nullable=False, server_default=""),
    Column("host", String(50), nullable=False, server_default=""),
    Column("filename", String(128)),
    Column("config", _longtext()),
    Column("posttime", DATETIME),
    Column("lastuser", String(50)),
    Column("level", Integer, server_default="2"),
    Column("config_flag", Integer, nullable=False, server_default="0"),
    UniqueConstraint(
        "server_name",
        "filename",
        "host",
        "level",
        "set_name",
        "set_area",
        "set_group",
        name="application",
    ),
    **_TABLE_KW,
)

t_group_priority = Table(
    "t_group_priority",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(128), server_default=""),
    Column("group_list", Text),
    Column("list_order", Integer, server_default="0"),
    Column("station", String(128), nullable=False, server_default=""),
    **_TABLE_KW,
)

t_node_info = Table(
    "t_node_info",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("node_name", String(128), server_default=""),
    Column("node_obj", String(128), server_default=""),
    Column("endpoint_ip", String(50), server_default=""),
    Column("endpoint_port", Integer, server_default="0"),
    Column("data_dir", String(128), server_default=""),
    Column("load_avg1", Float, server_default="0"),
    Column("load_avg5", Float, server_default="0"),
    Column("load_avg15", Float, server_default="0"),
    Column("last_reg_time", DATETIME),
    Column("last_heartbeat", DATETIME),
    Column("setting_state", _enum(*NODE_STATES), server_default="inactive"),
    Column("present_state", _enum(*NODE_STATES), server_default="inactive"),
    Column("tars_version", String(128), nullable=False, server_default=""),
    Column("template_name", String(128), nullable=False, server_default=""),
    _auto_timestamp("modify_time"),
    Column("group_id", Integer, server_default="-1"),
    Column("label", Text),
    # k8stars: identity of the pod that registered this node (pod IP) last.
    Column("pod_name", String(253)),
    Column("pod_uid", String(64)),
    UniqueConstraint("node_name", name="node_name"),
    Index("indx_node_info_1", "last_heartbeat"),
    **_TABLE_KW,
)

t_registry_info = Table(
    "t_registry_info",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("locator_id", String(128), nullable=False, server_default=""),
    Column("servant", String(128), nullable=False, server_default=""),
    Column("endpoint", String(128), nullable=False, server_default=""),
    Column("last_heartbeat", DATETIME),
    Column("present_state", _enum(*NODE_STATES), server_default="inactive"),
    Column("tars_version", String(128), nullable=False, server_default=""),
    _auto_timestamp("modify_time"),
    Column("enable_group", CHAR(1), server_default="N"),
    UniqueConstraint("locator_id", "servant", name="locator_id"),
    **_TABLE_KW,
)

t_server_conf = Table(
    "t_server_conf",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("application", String(128), server_default=""),
    Column("server_name", String(128), server_default=""),
    Column("node_group", String(50), nullable=False, server_default=""),
    Column("node_name", String(50), nullable=False, server_default=""),
    _auto_timestamp("registry_timestamp"),
    Column("base_path", String(128), server_default=""),
    Column("exe_path", String(128), nullable=False, server_default=""),
    Column("template_name", String(128), nullable=False, server_default=""),
    Column("bak_flag", Integer, nullable=False, server_default="0"),
    Column("setting_state", _enum(*NODE_STATES), nullable=False, server_default="inactive"),
    Column("present_state", _enum(*SERVER_STATES), nullable=False, server_default="inactive"),
    Column("process_id", Integer, nullable=False, server_default="0"),
    Column("patch_version", String(128), nullable=False, server_default=""),
    Column("patch_time", DATETIME),
    Column("patch_user", String(128), nullable=False, server_default=""),
    Column("tars_version", String(128), nullable=False, server_default=""),
    Column("posttime", DATETIME),
    Column("lastuser", String(30)),
    Column("server_type", _enum(*SERVER_TYPES), nullable=False, server_default="tars_cpp"),
    Column("start_script_path", String(128)),
    Column("stop_script_path", String(128)),
    Column("monitor_script_path", String(128)),
    Column("enable_group", CHAR(1), server_default="N"),
    Column("enable_set", CHAR(1), nullable=False, server_default="N"),
    Column("set_name", String(16)),
    Column("set_area", String(16)),
    Column("set_group", String(64)),
    Column("ip_group_name", String(64)),
    Column("profile", Text),
    Column("source", Text),
    Column("config_center_port", Integer, nullable=False, server_default="0"),
    Column("async_thread_num", Integer, server_default="3"),
    Column("server_important_type", _enum("0", "1", "2", "3", "4", "5"), server_default="0"),
    Column("grid_flag", String(16), nullable=False, server_default="NORMAL"),
    Column("flow_state", _enum(*NODE_STATES), nullable=False, server_default="active"),
    Column("run_type", String(32), nullable=False, server_default=""),
    Column("base_image_id", Integer, server_default="0"),
    # K8STARS: `alter table t_server_conf add metrics_port int(11) default 0`.
    Column("metrics_port", Integer, server_default="0"),
    # k8stars: identity of the pod that registered this server (K8STARS #14).
    Column("pod_name", String(253)),
    Column("pod_uid", String(64)),
    UniqueConstraint("application", "server_name", "node_name", name="application"),
    Index("node_name", "node_name"),
    Index("index_i_3", "setting_state", "server_type", "application", "server_name", "node_name"),
    Index("index_regtime", "registry_timestamp"),
    **_TABLE_KW,
)

t_server_group_rule = Table(
    "t_server_group_rule",
    metadata,
    Column("group_id", _uint(), primary_key=True, autoincrement=True),
    Column(
        "ip_order",
        _enum("allow_denny", "denny_allow"),
        nullable=False,
        server_default="denny_allow",
    ),
    Column("allow_ip_rule", Text),
    Column("denny_ip_rule", Text),
    Column("lastuser", String(50)),
    _auto_timestamp("modify_time"),
    Column("group_name", String(128), server_default=""),
    Column("group_name_cn", String(128), server_default=""),
    UniqueConstraint("group_name", name="group_name_index"),
    **_TABLE_KW,
)

# k8stars: one row per (application, server_name, node_name) registered or deleted, written in the
# same transaction; replicas poll it by id and time (see store_changes).
t_k8stars_change = Table(
    "t_k8stars_change",
    metadata,
    Column(
        "id",
        BigInteger().with_variant(Integer(), "sqlite"),
        primary_key=True,
        autoincrement=True,
    ),
    Column("application", String(128), nullable=False, server_default=""),
    Column("server_name", String(128), nullable=False, server_default=""),
    Column("node_name", String(50), nullable=False, server_default=""),
    Column("changed_at", TIMESTAMP, nullable=False, server_default=text("CURRENT_TIMESTAMP")),
    Index("index_k8stars_change_time", "changed_at"),
    **_TABLE_KW,
)


def ensure_schema(engine: Engine) -> list[str]:
    """Create missing tables and add missing columns; never drop or alter anything else.

    Returns the DDL actions taken (``"create t_x"``, ``"add t_x.col"``). Safe to run from several
    processes at once: a column another process added meanwhile is not an error.
    """
    actions: list[str] = []
    existing = set(inspect(engine).get_table_names())
    missing = [t for t in metadata.sorted_tables if t.name not in existing]
    if missing and engine.dialect.name in _MYSQL:
        for table in missing:
            try:
                with engine.begin() as conn:
                    conn.execute(_CreateTableWithKeys(table))
            except DBAPIError:
                if not inspect(engine).has_table(table.name):  # another process was faster?
                    raise
    elif missing:
        metadata.create_all(engine, tables=missing, checkfirst=True)
    actions += [f"create {t.name}" for t in missing]
    for table in metadata.sorted_tables:
        if table.name not in existing:
            continue
        have = _column_names(engine, table.name)
        for column in table.columns:
            if column.name.lower() in have:
                continue
            ddl = _add_column_ddl(engine, table, column)
            try:
                with engine.begin() as conn:
                    conn.exec_driver_sql(ddl)
            except DBAPIError:
                # Another process may have added it meanwhile; anything else is re-raised.
                if column.name.lower() not in _column_names(engine, table.name):
                    raise
            actions.append(f"add {table.name}.{column.name}")
    return actions


def _column_names(engine: Engine, table: str) -> set[str]:
    with warnings.catch_warnings():
        # Only names are needed; types SQLAlchemy cannot map (e.g. SQLite "int(11)") are fine.
        warnings.simplefilter("ignore", SAWarning)
        return {c["name"].lower() for c in inspect(engine).get_columns(table)}


def _add_column_ddl(engine: Engine, table: Table, column: Column[Any]) -> str:
    dialect = engine.dialect
    if dialect.name == "sqlite" and column.server_default is not None:
        # SQLite refuses ADD COLUMN with a non-constant default (CURRENT_TIMESTAMP): add it
        # without; the store always writes those columns explicitly anyway.
        arg = getattr(column.server_default, "arg", None)
        if arg is not None and not isinstance(arg, str):
            column = Column(column.name, column.type, nullable=True)
    spec = CreateColumn(column).compile(dialect=dialect)
    preparer = dialect.identifier_preparer
    return f"ALTER TABLE {preparer.format_table(table)} ADD COLUMN {spec}"
