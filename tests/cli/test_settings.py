"""tarscli environment variables: defaults, durations, bad values (k8stars.cli.settings)."""

from __future__ import annotations

import pytest

from k8stars.cli.settings import (
    COMMAND_NAMES,
    DURATION_FORMS,
    VARIABLES,
    Settings,
    SettingsError,
    parse_duration,
    variables_for,
)

# -- the table -------------------------------------------------------------------------------

CONTRACT_DEFAULTS = {
    "TARS_PATH": "/tars",
    "TARS_CHECK_INTERVAL": "10s",
    "TARS_CHECK_RETRY_TIMEOUT": "5s",
    "TARS_REPORT_INTERVAL": "30s",
    "TARS_ACTIVATING_TIMEOUT": "300s",
    "TARS_CHECK_SCRIPT_TIMEOUT": "2s",
    "TARS_PRESTOP_WAITTIME": "80s",
    "TARS_RAND_PORT_MIN": "13000",
    "TARS_RAND_PORT_MAX": "16000",
    "TARS_NAMESPACE": "tars-system",
    "TARS_START_PATH": "$TARS_PATH/bin/start.sh",
    "TARS_SYNC_TARGET_DIRECTORY": "$TARS_PATH/bin",
}
CONTRACT_VARIABLES = {
    *CONTRACT_DEFAULTS, "TARS_APPLICATION", "TARS_SERVER", "TARS_BUILD_SERVER", "TARS_SET_ID",
    "TARS_LOCATOR", "TARS_MERGE_CONF", "TARS_EP_UPTIME", "TARS_DISABLE_FLOW", "TARS_STOP_PATH",
    "TARS_BEFORE_CHECK_SCRIPT", "TARS_SYNC_DIRECTORY", "POD_IP", "POD_NAME", "POD_UID",
    "SERVER_VERSION",
}


def test_table_has_every_contract_variable_with_its_default() -> None:
    names = {v.name for v in VARIABLES}
    assert names >= CONTRACT_VARIABLES
    defaults = {v.name: v.default for v in VARIABLES}
    for name, default in CONTRACT_DEFAULTS.items():
        assert defaults[name] == default, name
    assert len(names) == len(VARIABLES)


def test_every_variable_is_read_by_known_subcommands_and_explained() -> None:
    for var in VARIABLES:
        assert var.commands and set(var.commands) <= set(COMMAND_NAMES), var.name
        assert var.meaning and var.kind in {"text", "path", "duration", "port", "ms", "flag"}
    assert [v.name for v in variables_for("hzcheck")] == ["TARS_PATH", "TARS_REPORT_INTERVAL",
                                                          "TARSCLI_DEBUG"]


def test_defaults_when_nothing_is_set() -> None:
    s = Settings({})
    assert s.tars_path == "/tars"
    assert s.check_interval == 10.0
    assert s.check_retry_timeout == 5.0
    assert s.report_interval == 30.0
    assert s.activating_timeout == 300.0
    assert s.check_script_timeout == 2.0
    assert s.prestop_waittime == 80.0
    assert (s.rand_port_min, s.rand_port_max) == (13000, 16000)
    assert s.namespace == "tars-system"
    assert s.start_path == "/tars/bin/start.sh"
    assert s.sync_target_directory == "/tars/bin"
    assert s.stop_path == s.sync_directory == s.before_check_script == ""
    assert s.application is s.server is s.set_id is s.locator is s.merge_conf is None
    assert s.ep_uptime is None and s.pod_ip is None and s.disable_flow is False
    assert s.path("data", "check_status") == "/tars/data/check_status"
    for command in COMMAND_NAMES:
        s.check(command)


def test_tars_path_moves_the_derived_defaults() -> None:
    s = Settings({"TARS_PATH": "/srv/app"})
    assert s.start_path == "/srv/app/bin/start.sh"
    assert s.sync_target_directory == "/srv/app/bin"


def test_empty_means_unset_except_for_the_set_id() -> None:
    s = Settings({"TARS_PATH": "", "TARS_CHECK_INTERVAL": "", "TARS_APPLICATION": "",
                  "TARS_SET_ID": ""})
    assert s.tars_path == "/tars"
    assert s.check_interval == 10.0
    assert s.application is None
    assert s.set_id == ""  # set and empty: clears set_id of _server_meta.yaml


# -- durations -------------------------------------------------------------------------------

@pytest.mark.parametrize(("text", "seconds"), [
    # the original's own test cases (tinycli/flags_test.go), except "-1s"
    ("0", 0.0), ("1ns", 1e-9), ("1us", 1e-6), ("1ms", 1e-3), ("1m", 60.0), ("2h", 7200.0),
    ("1d", 86400.0),
    # Go's time.ParseDuration forms
    ("30s", 30.0), ("1m30s", 90.0), ("500ms", 0.5), ("1h", 3600.0), ("1.5h", 5400.0),
    ("2h45m", 9900.0), (".5s", 0.5), ("1µs", 1e-6), ("+5s", 5.0), (" 10s ", 10.0),
])
def test_accepted_durations(text: str, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize(("text", "problem"), [
    ("a1", "expected a number at 'a1'"),
    ("a1s", "expected a number at 'a1s'"),
    ("a1ms", "expected a number at 'a1ms'"),
    ("100", "missing unit (did you mean 100s?)"),
    ("100as", "unknown unit 'as'"),
    ("10mm", "unknown unit 'mm'"),
    ("-1s", "a duration cannot be negative"),
    ("1m30", "missing unit"),
    ("1..5s", "expected a number at '1..5s'"),
    ("", "empty duration"),
])
def test_rejected_durations(text: str, problem: str) -> None:
    with pytest.raises(ValueError) as info:
        parse_duration(text)
    assert str(info.value) == problem


def test_bad_duration_names_variable_value_and_forms() -> None:
    with pytest.raises(SettingsError) as info:
        _ = Settings({"TARS_CHECK_INTERVAL": "10"}).check_interval
    assert str(info.value) == ("TARS_CHECK_INTERVAL='10': missing unit (did you mean 10s?); "
                               f"expected {DURATION_FORMS}")
    assert info.value.name == "TARS_CHECK_INTERVAL" and info.value.exit_code == 2


def test_zero_interval_is_rejected_where_it_makes_no_sense() -> None:
    with pytest.raises(SettingsError, match=r"^TARS_REPORT_INTERVAL='0s': must be more than 0"):
        _ = Settings({"TARS_REPORT_INTERVAL": "0s"}).report_interval
    assert Settings({"TARS_PRESTOP_WAITTIME": "0"}).prestop_waittime == 0.0


def test_check_stops_at_the_first_bad_variable_of_the_subcommand_only() -> None:
    s = Settings({"TARS_CHECK_INTERVAL": "soon"})
    s.check("hzcheck")  # hzcheck does not read TARS_CHECK_INTERVAL
    with pytest.raises(SettingsError, match="TARS_CHECK_INTERVAL='soon'"):
        s.check("supervisor")


# -- other kinds -----------------------------------------------------------------------------

@pytest.mark.parametrize("text", ["0", "65536", "13k", "-1", " ", "1e4"])
def test_bad_port(text: str) -> None:
    with pytest.raises(SettingsError) as info:
        _ = Settings({"TARS_RAND_PORT_MIN": text}).rand_port_min
    assert str(info.value).endswith("expected a port number from 1 to 65535")
    assert str(info.value).startswith("TARS_RAND_PORT_MIN=")


def test_metrics_port_is_optional() -> None:
    assert Settings({}).metrics_port is None
    assert Settings({"TARS_METRICS_PORT": ""}).metrics_port is None
    assert Settings({"TARS_METRICS_PORT": "9325"}).metrics_port == 9325
    assert Settings({"TARS_METRICS_PORT": " 65535 "}).metrics_port == 65535
    assert Settings({}).get("TARS_METRICS_PORT") is None
    Settings({}).check("supervisor")


@pytest.mark.parametrize("text", ["0", "65536", "metrics", "-1", "9 325", "9325.0"])
def test_bad_metrics_port(text: str) -> None:
    s = Settings({"TARS_METRICS_PORT": text})
    with pytest.raises(SettingsError) as info:
        _ = s.metrics_port
    assert str(info.value) == (f"TARS_METRICS_PORT={text!r}: expected a port number from 1 "
                               "to 65535")
    with pytest.raises(SettingsError, match="TARS_METRICS_PORT"):
        s.check("supervisor")
    s.check("genconf")  # only the supervisor reads it


def test_ep_uptime_is_milliseconds_or_a_duration() -> None:
    assert Settings({"TARS_EP_UPTIME": "30000"}).ep_uptime == 30000
    assert Settings({"TARS_EP_UPTIME": "45s"}).ep_uptime == 45000
    for bad in ("0", "soon", "-5"):
        with pytest.raises(SettingsError) as info:
            _ = Settings({"TARS_EP_UPTIME": bad}).ep_uptime
        assert str(info.value) == (f"TARS_EP_UPTIME={bad!r}: expected milliseconds (a whole "
                                   f"number more than 0, such as 60000) or {DURATION_FORMS}")


@pytest.mark.parametrize(("text", "value"), [
    ("1", True), ("yes", True), ("x", True), ("true", True),
    ("0", False), ("false", False), ("No", False), ("off", False), ("", False),
])
def test_disable_flow_flag(text: str, value: bool) -> None:
    assert Settings({"TARS_DISABLE_FLOW": text}).disable_flow is value


def test_pod_ip_must_be_an_address() -> None:
    assert Settings({"POD_IP": "10.0.0.7"}).pod_ip == "10.0.0.7"
    with pytest.raises(SettingsError) as info:
        _ = Settings({"POD_IP": "pod-7"}).pod_ip
    assert str(info.value) == "POD_IP='pod-7': expected an IP address such as 10.0.0.7"


def test_unknown_names_are_programming_errors() -> None:
    with pytest.raises(KeyError):
        Settings({}).text("TARS_NOPE")
    with pytest.raises(TypeError):
        Settings({}).duration("TARS_PATH")
