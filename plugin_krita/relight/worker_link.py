"""Non-blocking connection to the Relight worker, driven by Qt's event loop (QProcess).

The GUI thread never waits: requests are written to the worker's stdin and the replies come
back through ``readyReadStandardOutput``; callbacks run on the GUI thread, so they may touch
the Krita API. The worker is a child QProcess of the docker: it is killed when Krita quits
(``QApplication.aboutToQuit``) and, if Krita dies, it sees its stdin close and exits.
"""

from __future__ import annotations

import collections
import shutil
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .clientmod import client
from .qt_compat import QApplication, QObject, QProcess, QProcessEnvironment, QTimer

ResultCallback = Callable[[dict], None]
ErrorCallback = Callable[[str, str], None]  # code, one-line message
ProgressCallback = Callable[[str, float, str], None]  # stage, fraction, message


@dataclass
class Pending:
    request_id: str
    message: dict
    on_result: ResultCallback
    on_error: ErrorCallback
    on_progress: ProgressCallback | None


class WorkerLink(QObject):
    """One worker process, started on the first request, answered through callbacks."""

    def __init__(self, parent: QObject | None = None, idle_timeout_s: float = 300.0,
                 start_timeout_s: float = 60.0):
        super().__init__(parent)
        self._process: QProcess | None = None
        self._buffer = b""
        self._hello: dict | None = None
        self._pending: dict[str, Pending] = {}
        self._unsent: list[Pending] = []
        self._next_id = 0
        self._stderr_tail: collections.deque[str] = collections.deque(maxlen=20)
        self._temp_dir: str | None = None
        self.idle_timeout_ms = int(idle_timeout_s * 1000)
        self.start_timeout_ms = int(start_timeout_s * 1000)
        self._watchdog = QTimer(self)
        self._watchdog.setSingleShot(True)
        self._watchdog.timeout.connect(self._on_silence)
        app = QApplication.instance()
        if app is not None:
            app.aboutToQuit.connect(self.stop)

    # -- public
    @property
    def running(self) -> bool:
        return self._process is not None

    @property
    def busy(self) -> bool:
        return bool(self._pending or self._unsent)

    def temp_dir(self) -> str:
        """A private folder for pixel files, removed when the link stops."""
        if self._temp_dir is None:
            self._temp_dir = client.private_dir("relight-krita-")
        return self._temp_dir

    def request(self, op: str, params: dict, on_result: ResultCallback, on_error: ErrorCallback,
                on_progress: ProgressCallback | None = None) -> str:
        """Send one request (starting the worker if needed); returns its id.

        A failure to start (no config, missing interpreter) is reported through ``on_error``
        on the next turn of the event loop, never raised.
        """
        self._next_id += 1
        request_id = f"k{self._next_id}"
        pending = Pending(request_id, {"id": request_id, "op": op, **params}, on_result,
                          on_error, on_progress)
        try:
            self._ensure_started()
        except client.WorkerError as exc:
            code, message = exc.code, exc.message
            QTimer.singleShot(0, lambda: on_error(code, message))
            return request_id
        if self._hello is None:
            self._unsent.append(pending)
        else:
            self._send(pending)
        return request_id

    def cancel(self, request_id: str) -> None:
        """Ask the worker to stop a request; its callback then gets the ``cancelled`` error."""
        for index, pending in enumerate(self._unsent):
            if pending.request_id == request_id:
                del self._unsent[index]
                pending.on_error("cancelled", "cancelled")
                return
        if request_id in self._pending and self._process is not None:
            self._next_id += 1
            self._write({"id": f"k{self._next_id}", "op": "cancel", "target": request_id})

    def stop(self) -> None:
        """Shut the worker down (kill it if it lingers) and fail what is still pending."""
        process = self._detach_process()
        if process is not None:
            if process.state() != QProcess.ProcessState.NotRunning:
                process.write(client.encode({"id": "bye", "op": "shutdown"}))
                process.closeWriteChannel()
                if not process.waitForFinished(2000):
                    process.kill()
                    process.waitForFinished(2000)
            process.deleteLater()
        self._hello = None
        self._buffer = b""
        self._fail_all("worker_stopped", "Relight's worker was stopped")
        if self._temp_dir is not None:
            shutil.rmtree(self._temp_dir, ignore_errors=True)
            self._temp_dir = None

    # -- process plumbing
    def _ensure_started(self) -> None:
        if self._process is not None:
            return
        python = client.worker_python()
        worker_env = client.worker_env()
        command = client.worker_command(python, worker_env)
        process = QProcess(self)
        environment = QProcessEnvironment()
        for name, value in worker_env.items():
            environment.insert(name, value)
        process.setProcessEnvironment(environment)
        process.readyReadStandardOutput.connect(self._on_stdout)
        process.readyReadStandardError.connect(self._on_stderr)
        process.finished.connect(self._on_finished)
        process.errorOccurred.connect(self._on_process_error)
        self._process = process
        self._stderr_tail.clear()
        process.start(command[0], command[1:])
        self._watchdog.start(self.start_timeout_ms)

    def _write(self, message: dict) -> None:
        if self._process is not None:
            self._process.write(client.encode(message))

    def _send(self, pending: Pending) -> None:
        self._pending[pending.request_id] = pending
        self._write(pending.message)
        self._watchdog.start(self.idle_timeout_ms)

    def _on_stdout(self) -> None:
        if self._process is None:
            return
        self._buffer += bytes(self._process.readAllStandardOutput())
        *lines, self._buffer = self._buffer.split(b"\n")
        for line in lines:
            if line.strip():
                self._on_line(line)

    def _on_stderr(self) -> None:
        if self._process is None:
            return
        text = bytes(self._process.readAllStandardError()).decode("utf-8", "replace")
        self._stderr_tail.extend(line for line in text.splitlines() if line.strip())

    def _on_line(self, line: bytes) -> None:
        try:
            message = client.decode(line)
        except ValueError:
            self._crash("protocol", f"bad line from the worker: {line[:120]!r}")
            return
        if self._hello is None:
            self._on_hello(message)
            return
        pending = self._pending.get(str(message.get("id")))
        if pending is None:
            return  # the reply to a cancel or shutdown
        if self._pending:
            self._watchdog.start(self.idle_timeout_ms)
        kind = message.get("type")
        if kind == "progress":
            if pending.on_progress is not None:
                pending.on_progress(str(message.get("stage", "")),
                                    float(message.get("fraction", 0.0)),
                                    str(message.get("message", "")))
            return
        del self._pending[pending.request_id]
        if not self._pending:
            self._watchdog.stop()
        if kind == "result":
            try:
                pending.on_result(message)
            except Exception as exc:  # noqa: BLE001 - a slot must never raise into Krita
                traceback.print_exc()
                pending.on_error("internal", f"Relight failed on the answer: {exc}")
        else:
            pending.on_error(str(message.get("code", "internal")),
                             str(message.get("message", "the worker failed")))

    def _on_hello(self, message: dict) -> None:
        if message.get("type") != "hello" or message.get("protocol") != client.PROTOCOL:
            self._crash("protocol", f"the worker speaks protocol {message.get('protocol')}, "
                        f"this plug-in {client.PROTOCOL}; reinstall Relight so both match")
            return
        self._hello = message
        self._watchdog.stop()
        unsent, self._unsent = self._unsent, []
        for pending in unsent:
            self._send(pending)

    def _on_silence(self) -> None:
        waited = self.start_timeout_ms if self._hello is None else self.idle_timeout_ms
        self._crash("timeout", f"Relight's worker did not answer for {waited // 1000} s and "
                    "was stopped; try a smaller image")

    def _on_process_error(self, error: Any) -> None:
        if error == QProcess.ProcessError.FailedToStart:
            self._crash("worker_missing", "cannot start Relight's worker; " + client.INSTALL_HINT)

    def _on_finished(self, exit_code: int, *_status: Any) -> None:
        self._on_stderr()
        last = self._stderr_tail[-1] if self._stderr_tail else "no output"
        self._crash("worker_crashed",
                    client.worker_stopped_message(exit_code, last, self._hello is not None))

    def _detach_process(self) -> QProcess | None:
        """Take the worker process out of service: no more signals reach us from it."""
        process, self._process = self._process, None
        self._watchdog.stop()
        if process is not None:
            try:
                process.finished.disconnect()
                process.errorOccurred.disconnect()
            except TypeError:
                pass
        return process

    def _crash(self, code: str, message: str) -> None:
        process = self._detach_process()
        if process is not None:
            if process.state() != QProcess.ProcessState.NotRunning:
                process.kill()
                process.waitForFinished(2000)
            process.deleteLater()
        self._hello = None
        self._buffer = b""
        self._fail_all(code, message)

    def _fail_all(self, code: str, message: str) -> None:
        failed = list(self._unsent) + list(self._pending.values())
        self._unsent, self._pending = [], {}
        for pending in failed:
            pending.on_error(code, message)

    def stderr_tail(self) -> str:
        return "\n".join(self._stderr_tail)
