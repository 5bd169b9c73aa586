"""An operator's mistake ends the real command with one line on stderr naming the setting, a
non-zero exit and no traceback; a worker that keeps crashing is restarted ever more slowly."""
from __future__ import annotations

import re
import signal
import socket
import subprocess
import time

import pytest

from integration.cli.supervise import RestartPolicy, listen_problem
from integration.flows.plugins import PluginError, handler_plugins
from tests.e2e_stack import free_port


def run(integration_cmd, env, *args) -> subprocess.CompletedProcess:
    return subprocess.run([*integration_cmd, *args], env=env, capture_output=True, text=True, timeout=60)


def assert_one_line(result: subprocess.CompletedProcess, code: int, *fragments: str) -> None:
    assert result.returncode == code, result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    for fragment in fragments:
        assert fragment in lines[0]


@pytest.mark.parametrize("command", [["migrate"], ["worker"], ["serve", "--port", str(free_port())]])
def test_a_store_path_that_cannot_be_created_is_one_line(integration_cmd, subprocess_env, tmp_path, command):
    (tmp_path / "a-file").write_text("not a folder")
    env = {**subprocess_env, "DATABASE_URL": f"sqlite:///{tmp_path}/a-file/store/integration.db"}
    result = run(integration_cmd, env, *command)
    assert_one_line(result, 1, "DATABASE_URL", f"{tmp_path}/a-file is not a folder")


def test_serve_on_a_busy_port_is_one_line_before_anything_starts(integration_cmd, subprocess_env, tmp_path):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = run(integration_cmd, subprocess_env, "serve", "--host", "127.0.0.1", "--port", str(port))
    assert_one_line(result, 1, f"port {port} on 127.0.0.1 is already in use", "--port")
    assert not (tmp_path / "integration.db").exists(), "nothing may start before the port is known to be free"


def test_sandbox_on_a_busy_port_is_one_line(integration_cmd, subprocess_env):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = run(integration_cmd, subprocess_env, "sandbox", "--zuora-port", "0", "--billing-port", str(port))
    assert_one_line(result, 1, f"port {port} on 127.0.0.1 is already in use", "--billing-port")


def test_a_malformed_port_in_the_environment_is_a_usage_error_not_a_traceback(integration_cmd, subprocess_env):
    result = run(integration_cmd, {**subprocess_env, "PORT": "eighty"}, "serve")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "--port" in result.stderr and "eighty" in result.stderr


@pytest.mark.parametrize("command", [["worker"], ["serve", "--port", str(free_port())]])
def test_a_plugin_that_cannot_import_is_one_line(integration_cmd, subprocess_env, tmp_path, command):
    env = {**subprocess_env, "INTEGRATION_HANDLER_PLUGINS": "no_such_plugin_module:handlers"}
    result = run(integration_cmd, env, *command)
    assert_one_line(result, 2, "INTEGRATION_HANDLER_PLUGINS", "cannot import module 'no_such_plugin_module'")
    assert not (tmp_path / "integration.db").exists(), "nothing may start with a broken plug-in"


@pytest.mark.parametrize("spec, says", [
    ("json", "'json' must be module:function"),
    ("json:no_such_function", "module 'json' has no function 'no_such_function'"),
    ("broken_plugin:handlers", "cannot import module 'broken_plugin' (RuntimeError: broken on purpose)"),
])
def test_plugin_problems_name_the_variable_and_the_culprit(monkeypatch, tmp_path, spec, says):
    (tmp_path / "broken_plugin.py").write_text("raise RuntimeError('broken on purpose')\n")  # words of our own
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(PluginError) as raised:
        handler_plugins({"INTEGRATION_HANDLER_PLUGINS": spec})
    assert str(raised.value) == f"INTEGRATION_HANDLER_PLUGINS: {says}"


def test_plugins_load_in_the_order_given():
    import json
    import os.path
    assert handler_plugins({"INTEGRATION_HANDLER_PLUGINS": " json:dumps , os.path:join ,"}) == [json.dumps,
                                                                                              os.path.join]


def test_restart_delays_double_to_a_cap_and_reset_after_a_healthy_run():
    policy = RestartPolicy(first=0.5, cap=4.0, healthy_after=60.0)
    assert [policy.delay(ran_for=1.0) for _ in range(6)] == [0.5, 1.0, 2.0, 4.0, 4.0, 4.0]
    assert policy.delay(ran_for=60.0) == 0.5
    assert policy.delay(ran_for=2.0) == 1.0


def test_listen_problem_sees_a_busy_port_and_a_free_one():
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        assert listen_problem("127.0.0.1", port) == f"port {port} on 127.0.0.1 is already in use"
    assert listen_problem("127.0.0.1", port) is None


@pytest.mark.slow
def test_serve_restarts_a_crashing_worker_with_growing_delays(integration_cmd, subprocess_env, tmp_path):
    """The plug-in imports (so serve starts) but its function raises, so every worker dies at start-up."""
    (tmp_path / "crashing_plugin.py").write_text("def handlers(services):\n    raise RuntimeError('boom')\n")
    env = {**subprocess_env, "INTEGRATION_HANDLER_PLUGINS": "crashing_plugin:handlers",
           "PYTHONPATH": f"{tmp_path}:{subprocess_env['PYTHONPATH']}"}
    serve = subprocess.Popen([*integration_cmd, "serve", "--host", "127.0.0.1", "--port", str(free_port()),
                              "--workers", "1"],
                             env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    announced: list[float] = []
    try:
        deadline = time.monotonic() + 60
        while len(announced) < 4:
            assert time.monotonic() < deadline and serve.poll() is None, announced
            found = re.match(r"worker exited with 1; restarting it in ([\d.]+) s$", serve.stderr.readline().strip())
            if found:
                announced.append(float(found.group(1)))
    finally:
        serve.send_signal(signal.SIGTERM)
        serve.communicate(timeout=60)
    assert announced == [0.5, 1.0, 2.0, 4.0]
    assert serve.returncode == 0
