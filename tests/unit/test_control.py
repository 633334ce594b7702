"""The control protocol: versioned JSON answers and their error paths, and a real round trip
through a Unix socket in a temporary run directory (no root needed)."""
from __future__ import annotations

import json
import selectors
import stat
import threading

import pytest

from emulator import paths
from emulator.control import client, protocol
from emulator.control.server import ControlServer
from emulator.errors import AwsApiError, LabError


def handler(op: str, args: dict) -> object:
    if op == "echo":
        return args
    if op == "refuse":
        raise AwsApiError("InvalidPermission.Duplicate", "the specified rule already exists")
    if op == "bad":
        raise LabError("that makes no sense")
    raise RuntimeError("engine bug")


def ask(line: bytes) -> dict:
    return protocol.answer(line, handler)


def test_ok_answer_carries_the_version_and_result():
    assert ask(protocol.encode(protocol.request_message("echo", {"x": 1}))) == {"v": 1, "ok": True,
                                                                               "result": {"x": 1}}


def test_aws_errors_keep_their_code_and_message():
    answer = ask(b'{"v": 1, "op": "refuse", "args": {}}')
    assert answer == {"v": 1, "ok": False, "code": "InvalidPermission.Duplicate",
                      "error": "the specified rule already exists"}


@pytest.mark.parametrize(("line", "code"), [
    (b"not json", "MalformedRequest"),
    (b"[1, 2]", "MalformedRequest"),
    (b'{"v": 2, "op": "echo"}', "UnsupportedVersion"),
    (b'{"op": "echo"}', "UnsupportedVersion"),
    (b'{"v": 1, "args": {}}', "MalformedRequest"),
    (b'{"v": 1, "op": "echo", "args": [1]}', "MalformedRequest"),
    (b'{"v": 1, "op": "bad"}', "InvalidParameterValue"),
    (b'{"v": 1, "op": "crash"}', "InternalError"),
])
def test_bad_requests_get_error_answers_never_exceptions(line, code):
    answer = ask(line)
    assert (answer["ok"], answer["code"], answer["v"]) == (False, code, 1)


def test_result_of_raises_the_refusal_as_aws_api_error():
    data = protocol.encode(protocol.error_message("InvalidGroup.NotFound", "no sg-x"))
    with pytest.raises(AwsApiError) as caught:
        protocol.result_of("lab", data)
    assert caught.value.code == "InvalidGroup.NotFound"
    assert str(caught.value) == "InvalidGroup.NotFound: no sg-x"


def test_a_cut_answer_means_the_engine_is_gone():
    with pytest.raises(LabError, match="engine is not running"):
        protocol.result_of("lab", b'{"v": 1, "ok": tr')


@pytest.fixture
def run_dir(tmp_path, monkeypatch):
    monkeypatch.setattr(paths, "RUN_DIR", tmp_path)
    return tmp_path


def _lab(run_dir, name: str = "t") -> None:
    (run_dir / name).mkdir(mode=0o700)
    (run_dir / name / "state.json").write_text("{}")


def test_no_lab_and_no_engine_are_clear_errors(run_dir):
    with pytest.raises(LabError, match="no lab named 't' is running"):
        client.request("t", "echo")
    _lab(run_dir)
    with pytest.raises(LabError, match="lab t's engine is not running.*sgemu status --lab t"):
        client.request("t", "echo")


class Loop:
    """A stand-in for the engine's selector loop, served from a thread."""

    def __init__(self):
        self.selector = selectors.DefaultSelector()
        self.stopping = False

    def register(self, fileobj, callback):
        self.selector.register(fileobj, selectors.EVENT_READ, callback)

    def unregister(self, fileobj):
        self.selector.unregister(fileobj)

    def run(self):
        while not self.stopping:
            for key, _ in self.selector.select(0.05):
                key.data()


@pytest.fixture
def served(run_dir):
    _lab(run_dir)
    loop = Loop()
    server = ControlServer(paths.paths("t").control, handler, loop.register, loop.unregister)
    thread = threading.Thread(target=loop.run)
    thread.start()
    yield server
    loop.stopping = True
    thread.join()
    server.close()


def test_round_trip_through_the_socket(served, run_dir):
    mode = (run_dir / "t" / "control.sock").stat().st_mode
    assert stat.S_ISSOCK(mode) and stat.S_IMODE(mode) == 0o600
    assert client.request("t", "echo", rule={"protocol": "tcp", "ports": "22"}) == {
        "rule": {"protocol": "tcp", "ports": "22"}}
    with pytest.raises(AwsApiError) as caught:
        client.request("t", "refuse")
    assert caught.value.code == "InvalidPermission.Duplicate"
    # The server keeps serving after errors and many clients.
    assert [client.request("t", "echo", n=n)["n"] for n in range(20)] == list(range(20))


def test_a_large_answer_arrives_whole(served):
    big = "x" * 300_000
    assert client.request("t", "echo", blob=big)["blob"] == big


def test_close_removes_the_socket(run_dir):
    _lab(run_dir)
    loop = Loop()
    server = ControlServer(paths.paths("t").control, handler, loop.register, loop.unregister)
    assert paths.paths("t").control.exists()
    server.close()
    assert not paths.paths("t").control.exists()
    with pytest.raises(LabError, match="engine is not running"):
        client.request("t", "echo")


def test_encode_is_one_line_of_json():
    data = protocol.encode({"a": "line\nbreak"})
    assert data.count(b"\n") == 1 and json.loads(data) == {"a": "line\nbreak"}
