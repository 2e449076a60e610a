"""Schema: created when missing, missing columns added to an existing (v2.4.3) db_tars."""

from __future__ import annotations

import re

from sqlalchemy import create_engine, inspect, text
from sqlalchemy.pool import NullPool

from k8stars.registry.schema import ensure_schema, metadata
from k8stars.registry.store import Store

from .conftest import beat, startup

# t_server_conf and t_node_info as TarsFramework v2.4.3's db_tars.sql (K8STARS) creates them:
# no flow_state/source/run_type/base_image_id/metrics_port/pod_*, remote_log_* instead; no label.
V243_SERVER_CONF = """
CREATE TABLE `t_server_conf` (
  `id` int(11) NOT NULL AUTO_INCREMENT,
  `application` varchar(128) DEFAULT '',
  `server_name` varchar(128) DEFAULT '',
  `node_group` varchar(50) NOT NULL DEFAULT '',
  `node_name` varchar(50) NOT NULL DEFAULT '',
  `registry_timestamp` timestamp NOT NULL DEFAULT CURRENT_TIMESTAMP ON UPDATE CURRENT_TIMESTAMP,
  `base_path` varchar(128) DEFAULT '',
  `exe_path` varchar(128) NOT NULL DEFAULT '',
  `template_name` varchar(128) NOT NULL DEFAULT '',
  `bak_flag` int(11) NOT NULL DEFAULT '0',
  `setting_state` enum('active','inactive') NOT NULL DEFAULT 'inactive',
  `present_state` enum('active','inactive','activating','deactivating','destroyed')
    NOT NULL DEFAULT 'inactive',
  `process_id` int(11) NOT NULL DEFAULT '0',
  `patch_version` varchar(128) NOT NULL DEFAULT '',
  `patch_time` datetime DEFAULT NULL,
  `patch_user` varchar(128) NOT NULL DEFAULT '',
  `tars_version` varchar(128) NOT NULL DEFAULT '',
  `posttime` datetime DEFAULT NULL,
  `lastuser` varchar(30) DEFAULT NULL,
  `server_type` enum('tars_cpp','not_tars','tars_java','tars_nodejs','tars_php','tars_go')
    NOT NULL DEFAULT 'tars_cpp',
  `start_script_path` varchar(128) DEFAULT NULL,
  `stop_script_path` varchar(128) DEFAULT NULL,
  `monitor_script_path` varchar(128) DEFAULT NULL,
  `enable_group` char(1) DEFAULT 'N',
  `enable_set` char(1) NOT NULL DEFAULT 'N',
  `set_name` varchar(16) DEFAULT NULL,
  `set_area` varchar(16) DEFAULT NULL,
  `set_group` varchar(64) DEFAULT NULL,
  `ip_group_name` varchar(64) DEFAULT NULL,
  `profile` text,
  `config_center_port` int(11) NOT NULL DEFAULT '0',
  `async_thread_num` int(11) DEFAULT '3',
  `server_important_type` enum('0','1','2','3','4','5') DEFAULT '0',
  `remote_log_reserve_time` varchar(32) NOT NULL DEFAULT '65',
  `remote_log_compress_time` varchar(32) NOT NULL DEFAULT '2',
  `remote_log_type` int(1) NOT NULL DEFAULT '0',
  `grid_flag` varchar(16) NOT NULL DEFAULT 'NORMAL',
  PRIMARY KEY (`id`),
  UNIQUE KEY `application` (`application`,`server_name`,`node_name`),
  KEY `node_name` (`node_name`),
  KEY `index_i_3` (`setting_state`,`server_type`,`application`,`server_name`,`node_name`),
  KEY `index_regtime` (`registry_timestamp`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8
"""

V243_NODE_INFO = """
CREATE TABLE `t_node_info` (
  `id` int(11) NOT NULL AUTO_INCREMENT,
  `node_name` varchar(128) DEFAULT '',
  `node_obj` varchar(128) DEFAULT '',
  `endpoint_ip` varchar(50) DEFAULT '',
  `endpoint_port` int(11) DEFAULT '0',
  `data_dir` varchar(128) DEFAULT '',
  `load_avg1` float DEFAULT '0',
  `load_avg5` float DEFAULT '0',
  `load_avg15` float DEFAULT '0',
  `last_reg_time` datetime DEFAULT NULL,
  `last_heartbeat` datetime DEFAULT NULL,
  `setting_state` enum('active','inactive') DEFAULT 'inactive',
  `present_state` enum('active','inactive') DEFAULT 'inactive',
  `tars_version` varchar(128) NOT NULL DEFAULT '',
  `template_name` varchar(128) NOT NULL DEFAULT '',
  `modify_time` timestamp NOT NULL DEFAULT CURRENT_TIMESTAMP ON UPDATE CURRENT_TIMESTAMP,
  `group_id` int(11) DEFAULT '-1',
  PRIMARY KEY (`id`),
  UNIQUE KEY `node_name` (`node_name`),
  KEY `indx_node_info_1` (`last_heartbeat`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8
"""


def _sqlite_ddl(mysql_ddl: str) -> str:
    """The same table in SQLite's dialect (ENUMs as varchar, keys as UNIQUE, no ON UPDATE)."""
    ddl = mysql_ddl.replace("`id` int(11) NOT NULL AUTO_INCREMENT", "`id` INTEGER PRIMARY KEY")
    ddl = re.sub(r"enum\s*\([^)]*\)", "varchar(32)", ddl)
    ddl = re.sub(r"\bint\(\d+\)", "integer", ddl)
    ddl = ddl.replace(" ON UPDATE CURRENT_TIMESTAMP", "").replace(",\n  PRIMARY KEY (`id`)", "")
    ddl = re.sub(r"UNIQUE KEY `\w+` ", "UNIQUE ", ddl)
    ddl = re.sub(r",\n\s*KEY `\w+` \([^)]*\)", "", ddl)
    return ddl.replace(") ENGINE=InnoDB DEFAULT CHARSET=utf8", ")")


def _columns(url: str, table: str) -> dict[str, dict[str, object]]:
    engine = create_engine(url, poolclass=NullPool)
    try:
        return {c["name"]: dict(c) for c in inspect(engine).get_columns(table)}
    finally:
        engine.dispose()


def test_ensure_schema_creates_every_table_once(empty_db_url: str) -> None:
    store = Store(empty_db_url)
    try:
        actions = store.ensure_schema()
        assert sorted(actions) == sorted(f"create {t}" for t in metadata.tables)
        assert store.ensure_schema() == []  # idempotent
        engine = store.engine
        names = set(inspect(engine).get_table_names())
        assert set(metadata.tables) <= names
        server_cols = _columns(empty_db_url, "t_server_conf")
        for col in ("flow_state", "metrics_port", "pod_name", "pod_uid", "grid_flag"):
            assert col in server_cols
        uniques = {
            u["name"]: u["column_names"]
            for u in inspect(engine).get_unique_constraints("t_server_conf")
        }
        assert ["application", "server_name", "node_name"] in uniques.values()
        if store.is_mysql:
            assert "enum" in str(server_cols["present_state"]["type"]).lower()
            with engine.connect() as conn:
                ddl = conn.execute(text("SHOW CREATE TABLE t_server_conf")).one()[1]
            assert re.search(
                r"`registry_timestamp` timestamp.*ON UPDATE current_timestamp", ddl, re.I
            )
            assert "KEY `index_regtime` (`registry_timestamp`)" in ddl
    finally:
        store.close()


def test_missing_columns_added_to_a_v243_db_tars(empty_db_url: str) -> None:
    engine = create_engine(empty_db_url, poolclass=NullPool)
    mysql = engine.dialect.name in ("mysql", "mariadb")
    with engine.begin() as conn:
        for ddl in (V243_SERVER_CONF, V243_NODE_INFO):
            conn.exec_driver_sql(ddl if mysql else _sqlite_ddl(ddl))
        conn.exec_driver_sql(
            "INSERT INTO t_server_conf (application, server_name, node_name, setting_state,"
            " present_state, remote_log_type) VALUES ('Old', 'Srv', '10.9.9.9', 'active',"
            " 'active', 1)"
        )
    actions = ensure_schema(engine)
    assert "add t_server_conf.flow_state" in actions
    assert "add t_server_conf.metrics_port" in actions
    assert "add t_node_info.label" in actions
    assert "create t_adapter_conf" in actions
    assert ensure_schema(engine) == []
    cols = _columns(empty_db_url, "t_server_conf")
    assert {"flow_state", "metrics_port", "pod_uid", "remote_log_type"} <= set(cols)
    with engine.connect() as conn:
        row = conn.execute(
            text("SELECT flow_state, metrics_port, remote_log_type FROM t_server_conf")
        ).one()
    assert (row.flow_state, row.metrics_port, row.remote_log_type) == ("active", 0, 1)
    engine.dispose()

    store = Store(empty_db_url)
    try:
        store.on_startup(startup(podUid="uid-1", disableFlow=True))
        assert store.keep_alive_batch([beat(app="App", server="Srv")]).touched == 1
        snapshot, _ = store.load_snapshot()
        by_app = {(r.application, r.node_name): r for r in snapshot.instances}
        assert by_app[("App", "10.0.0.1")].flow_state == "inactive"
        assert by_app[("Old", "10.9.9.9")].servant == ""  # a server without adapters
    finally:
        store.close()
