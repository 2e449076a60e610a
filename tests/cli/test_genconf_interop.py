"""The config genconf writes starts a real TarsNode server (``@tars/rpc`` ``initialize(file)``).

A server nobody here wrote reads ``conf/<server>.conf``, listens on every adapter with the
resolved endpoints, and answers calls on each; its AdminObj (emulating @tars/node-agent) listens
on the ``local`` endpoint.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from k8stars.cli.genconf import generate
from k8stars.cli.settings import Settings
from tests.interop.node_rpc import calc_server, node_available, run_calc_client

pytestmark = [
    pytest.mark.interop,
    pytest.mark.skipif(not node_available(), reason="Node.js / npm not available"),
]

META = """\
application: App
server: NodeServer
adapters:
  - object: CalcObj
    threads: 2
  - object: OtherObj
    endpoint: tcp -h ${local_ip} -p ${random_port} -t 10000
"""


def test_tarsnode_server_starts_from_the_generated_config(tmp_path: Path) -> None:
    (tmp_path / "bin").mkdir()
    (tmp_path / "bin" / "_server_meta.yaml").write_text(META)
    result = generate(Settings({"TARS_PATH": str(tmp_path), "POD_IP": "127.0.0.1"}))
    info = result.info
    with calc_server(config=result.conf_path, admin=True) as server:
        listening = {a["servant"]: a["endpoint"] for a in server.adapters}
        assert set(listening) == set(info.servants)
        for adapter in info.adapters:
            ours = adapter.endpoint.split()
            theirs = listening[adapter.servant].split()
            assert ours[ours.index("-p") + 1] == theirs[theirs.index("-p") + 1]
            answers = run_calc_client([{"op": "add", "args": [40, 2]}],
                                      proxy=f"{adapter.servant}@{adapter.endpoint}")
            assert answers[0]["ok"] is True and answers[0]["ret"] == 42, answers
        assert server.admin_endpoint is not None
        admin_port = server.admin_endpoint.split()[server.admin_endpoint.split().index("-p") + 1]
        assert f"-p {admin_port} " in info.local + " "
        answers = run_calc_client([{"op": "notify", "args": ["tars.viewversion"],
                                    "target": "admin"}], admin=f"AdminObj@{info.local}")
        assert answers[0]["ok"] is True, answers
