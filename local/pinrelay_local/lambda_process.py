"""Run Lambda invocations the way Lambda runs them: in their own process, killed at the timeout.

An in-process call of a handler is kind to it: an exception can be caught, ``finally`` blocks run,
the test's process and module state outlive it. Lambda is not kind. A Python function runs in a
process of its own ("execution environment"); at the function's timeout (or memory limit) Lambda
kills that process outright - no exception, no ``finally``, no ``atexit`` - and the next
invocation gets a new process that imports the handler module again (a cold start). Between
invocations that did not fail that way, the same process serves the next one, with its
module-level state (a warm start).

This module reproduces that with real processes:

* ``invoke(handler, event, ...)`` runs one invocation in a fresh process (a cold start) and returns
  an ``InvocationResult``;
* ``LambdaWorker`` is a warm execution environment: a process that serves invocations one at a
  time and is replaced (SIGKILL, then a cold start on the next invocation) after a timeout, an
  out-of-memory or an outside kill.

How an invocation runs. The parent starts ``sys.executable`` (the venv's python3.13) with a small
bootstrap that loads this file and runs ``run_runtime`` (below), which emulates Lambda's Python
runtime:

1. the child waits for an ``init`` message on its command pipe. The parent sends it only after
   ``on_start(pid)`` has returned, so a test can register the process (e.g. its kill callback with
   ``AwsFaultProxy``) before any function code runs - module-level code that calls AWS included;
2. init: ``python_paths`` go first on ``sys.path`` (the function's code dir and the layer dir, as
   /var/task and /opt/python on Lambda), the handler module is imported, and the child answers
   ``ready`` (or an init error: ``Runtime.ImportModuleError``, ``Runtime.HandlerNotFound``).
   Init has its own limit, ``init_timeout_s`` (Lambda's is 10 s);
3. each ``invoke`` message carries the event (JSON) and the deadline; the handler is called with a
   context whose ``get_remaining_time_in_millis()`` counts down to that deadline, which is
   ``timeout_s`` after the parent sent the message (``CLOCK_MONOTONIC``, one clock for every
   process on a machine); the response goes back JSON-encoded (Decimal as float, like Lambda's
   runtime; anything else not serialisable is ``Runtime.MarshalError``);
4. the parent waits for the answer until the deadline and then SIGKILLs the process: status
   ``timeout``. A process that dies of someone else's SIGKILL (the fault proxy's) is ``killed``.

The answer travels on a pipe of its own (fds passed with ``pass_fds``), length-prefixed JSON, so
whatever the handler prints cannot corrupt it. The handler's stdout and stderr go to unlinked temp
files (no pipe to fill up, however much it prints) opened with O_APPEND; each result carries what
was written since the previous one (init output comes with the first invocation, as in a Lambda
log stream). ``PYTHONUNBUFFERED=1``: Lambda's runtime writes logs unbuffered, so nothing printed
before a kill is lost.

The child's environment is what Lambda sets (AWS_LAMBDA_FUNCTION_NAME, AWS_LAMBDA_FUNCTION_MEMORY_SIZE,
AWS_REGION, AWS_EXECUTION_ENV, _HANDLER, TZ, ...), then ``env`` (which wins), then
``AWS_SDK_UA_APP_ID=<caller_id>`` (botocore puts ``app/<caller_id>`` in its User-Agent, which the
fault proxy reads). Nothing else is inherited from the test process but PATH, so a variable set
in the test (an AWS_ENDPOINT_URL pointing past the proxy, say) cannot leak into a function.
``AWS_CONFIG_FILE`` and ``AWS_SHARED_CREDENTIALS_FILE`` point at /dev/null, as a Lambda
environment has no ~/.aws.

Memory (``enforce_memory=True``): the child sets ``RLIMIT_AS`` to ``memory_mb`` +
``ADDRESS_SPACE_ALLOWANCE_MB`` (256 MB) and runs with ``MALLOC_ARENA_MAX=2``. The allowance is
address space a process reserves without using it: 8 MB of stack per thread, 64 MB per glibc
malloc arena, library mappings (python + boto3 + Powertools with 8 threads: 225 MB reserved for
110 MB resident). Lambda limits resident memory, so the emulation is approximate: a handler dies
somewhere between ``memory_mb`` and ``memory_mb`` + 256 MB of real use. When an allocation fails,
the runtime kills its own process at the ``raise`` of the ``MemoryError`` (a ``sys.monitoring``
RAISE callback, before any ``except`` or ``finally`` of the handler runs), as Lambda's OOM kill
would; the result is ``error`` / ``Runtime.OutOfMemory``.

Only for local runs and tests; nothing here is deployed.
"""

from __future__ import annotations

import decimal
import fcntl
import importlib
import importlib.util
import json
import os
import re
import select
import signal
import struct
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ADDRESS_SPACE_ALLOWANCE_MB = 256
LAMBDA_INIT_TIMEOUT_S = 10.0
DEFAULT_REGION = "us-east-1"
LOCAL_ACCOUNT_ID = "123456789012"
_CALLER_ID = re.compile(r"[A-Za-z0-9._\-]+")  # survives botocore's User-Agent sanitising as is
_HEADER = struct.Struct(">I")


def _monotonic() -> float:
    """CLOCK_MONOTONIC: the same clock in the parent and the child."""
    return time.clock_gettime(time.CLOCK_MONOTONIC)


# -- the result -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class InvocationResult:
    """What one invocation did. ``status``: ``ok`` (``response`` is the handler's return value
    after a JSON round trip), ``error`` (the handler raised - ``error_type`` / ``error_message``
    as Lambda's ``errorType`` / ``errorMessage`` - or init failed, or Runtime.OutOfMemory /
    Runtime.ExitError), ``timeout`` (killed at the timeout, ``Sandbox.Timedout``) or ``killed``
    (SIGKILLed by someone else, e.g. the fault proxy)."""

    status: str
    request_id: str
    pid: int
    cold_start: bool
    duration_s: float  # from sending the event to the answer (or the kill)
    init_duration_s: float | None = None  # cold starts: from "init" sent to the handler module imported
    response: Any = None
    error_type: str | None = None
    error_message: str | None = None
    stack_trace: list[str] = field(default_factory=list)
    stdout: str = ""
    stderr: str = ""
    exit_signal: int | None = None  # the signal that ended the process during this invocation

    @property
    def ok(self) -> bool:
        return self.status == "ok"


# -- parent side ----------------------------------------------------------------------------------

_BOOTSTRAP = (
    "import importlib.util, sys\n"
    "spec = importlib.util.spec_from_file_location('_pinrelay_lambda_runtime', sys.argv[1])\n"
    "runtime = sys.modules[spec.name] = importlib.util.module_from_spec(spec)\n"
    "spec.loader.exec_module(runtime)\n"
    "runtime.run_runtime(int(sys.argv[2]), int(sys.argv[3]))\n"
)


def _output_file() -> int:
    """An unlinked temp file opened O_APPEND (the child's writes always land at its end, also
    after the parent truncates it)."""
    descriptor, path = tempfile.mkstemp(prefix="lambda-output-")
    os.unlink(path)
    fcntl.fcntl(descriptor, fcntl.F_SETFL, fcntl.fcntl(descriptor, fcntl.F_GETFL) | os.O_APPEND)
    return descriptor


def _take_output(descriptor: int) -> str:
    """Everything written so far, then empty the file."""
    size = os.fstat(descriptor).st_size
    data = os.pread(descriptor, size, 0) if size else b""
    os.ftruncate(descriptor, 0)
    return data.decode("utf-8", "replace")


class _ChildDied(Exception):
    pass


class _Deadline(Exception):
    pass


class _Process:
    """One execution environment: the child process and its pipes (parent side)."""

    def __init__(self, argv: list[str], env: dict[str, str], cwd: str | None) -> None:
        command_read, self.command_write = os.pipe()
        self.result_read, result_write = os.pipe()
        self.stdout_fd = _output_file()
        self.stderr_fd = _output_file()
        try:
            self.popen = subprocess.Popen(
                [*argv, str(command_read), str(result_write)],
                stdin=subprocess.DEVNULL,
                stdout=self.stdout_fd,
                stderr=self.stderr_fd,
                env=env,
                cwd=cwd,
                pass_fds=(command_read, result_write),
                start_new_session=True,  # a Ctrl-C in the terminal is not sent to functions
            )
        except BaseException:
            for descriptor in (self.command_write, self.result_read, self.stdout_fd, self.stderr_fd):
                os.close(descriptor)
            raise
        finally:
            os.close(command_read)
            os.close(result_write)
        self.pid = self.popen.pid
        try:
            self.pidfd: int | None = os.pidfd_open(self.pid)  # readable once the child has exited
        except (AttributeError, OSError):
            self.pidfd = None
        self._buffer = b""

    def alive(self) -> bool:
        return self.popen.poll() is None

    def send(self, message: dict[str, Any]) -> None:
        data = json.dumps(message).encode("utf-8")
        try:
            os.write(self.command_write, _HEADER.pack(len(data)))
            view = memoryview(data)
            while view:
                written = os.write(self.command_write, view)
                view = view[written:]
        except OSError as exc:  # EPIPE: the child is gone
            raise _ChildDied() from exc

    def receive(self, deadline: float) -> dict[str, Any]:
        """The next message; ``_Deadline`` when ``deadline`` passes first, ``_ChildDied`` when the
        child is gone without one."""
        header = self._read_exactly(_HEADER.size, deadline)
        (length,) = _HEADER.unpack(header)
        return json.loads(self._read_exactly(length, deadline))

    def _read_exactly(self, size: int, deadline: float) -> bytes:
        poller = select.poll()
        poller.register(self.result_read, select.POLLIN)
        if self.pidfd is not None:
            poller.register(self.pidfd, select.POLLIN)
        while len(self._buffer) < size:
            remaining = deadline - _monotonic()
            if remaining <= 0:
                raise _Deadline()
            events = dict(poller.poll(max(1, int(remaining * 1000))))
            if self.result_read in events:
                chunk = os.read(self.result_read, max(65536, size - len(self._buffer)))
                if not chunk:
                    raise _ChildDied()
                self._buffer += chunk
            elif self.pidfd is not None and self.pidfd in events:
                raise _ChildDied()
        data, self._buffer = self._buffer[:size], self._buffer[size:]
        return data

    def kill_and_reap(self) -> int | None:
        """SIGKILL (if still running) and wait; the signal that ended it, if any."""
        try:
            self.popen.kill()
        except ProcessLookupError:
            pass
        returncode = self.popen.wait()
        return -returncode if returncode < 0 else None

    def reap(self, timeout_s: float = 5.0) -> int:
        try:
            return self.popen.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            self.popen.kill()
            return self.popen.wait()

    def take_output(self) -> tuple[str, str]:
        return _take_output(self.stdout_fd), _take_output(self.stderr_fd)

    def close(self) -> None:
        if self.popen.returncode is None:
            self.kill_and_reap()
        for descriptor in (self.command_write, self.result_read, self.stdout_fd, self.stderr_fd, self.pidfd):
            if descriptor is not None:
                try:
                    os.close(descriptor)
                except OSError:
                    pass
        self.pidfd = None


def _function_name_of(handler: str) -> str:
    module = _split_handler(handler)[0]
    name = Path(module).stem if module.endswith(".py") else module.rsplit(".", 1)[-1]
    return name.replace("_", "-")


def _split_handler(handler: str) -> tuple[str, str]:
    """``path/to/file.py:function`` / ``module:function`` / Lambda's ``module.function`` ->
    (module or file, function)."""
    if ":" in handler:
        module, _, function = handler.rpartition(":")
    else:
        module, _, function = handler.rpartition(".")
    if not module or not function:
        raise ValueError(f"handler {handler!r} is not 'file.py:function', 'module:function' or 'module.function'")
    return module, function


def _resolve_handler_file(handler: str, python_paths: list[str]) -> str:
    """A relative ``file.py:function`` is looked up in ``python_paths``, then in the current
    directory, and made absolute."""
    module, function = _split_handler(handler)
    if not module.endswith(".py") or Path(module).is_absolute():
        return handler
    for base in [*python_paths, os.getcwd()]:
        candidate = Path(base) / module
        if candidate.is_file():
            return f"{candidate.resolve()}:{function}"
    raise FileNotFoundError(f"handler file {module!r} not found in {python_paths} or the current directory")


class LambdaWorker:
    """A warm Lambda execution environment: one process serving invocations one at a time.

    The process starts on the first ``invoke`` (a cold start: ``on_start(pid)`` is called, then the
    handler module is imported). Module-level state persists between invocations. After a
    timeout, an out-of-memory, an outside kill or an init failure the process is gone and the
    next ``invoke`` starts a new one, as Lambda replaces such an environment. A handler exception
    leaves the process serving (as Lambda's Python runtime does). ``close()`` SIGKILLs it: Lambda
    ends an idle environment without running ``atexit`` code either.

    Thread-safe: concurrent ``invoke`` calls on one worker run one after the other; separate
    workers run in parallel.
    """

    def __init__(
        self,
        handler: str,
        *,
        env: dict[str, str],
        timeout_s: float,
        python_paths: list[str],
        caller_id: str | None = None,
        memory_mb: int = 256,
        enforce_memory: bool = False,
        on_start: Callable[[int], None] | None = None,
        function_name: str | None = None,
        init_timeout_s: float = LAMBDA_INIT_TIMEOUT_S,
        cwd: str | None = None,
        clock_offset_s: float = 0.0,
    ) -> None:
        self.clock_offset_s = float(clock_offset_s)
        self.python_paths = [str(Path(p).resolve()) for p in python_paths]
        self.handler = _resolve_handler_file(handler, self.python_paths)
        if caller_id is not None and not _CALLER_ID.fullmatch(caller_id):
            raise ValueError(f"caller_id {caller_id!r}: use letters, digits, '.', '_' and '-'")
        if timeout_s <= 0:
            raise ValueError("timeout_s must be > 0")
        self.timeout_s = float(timeout_s)
        self.caller_id = caller_id
        self.memory_mb = int(memory_mb)
        self.enforce_memory = enforce_memory
        self.on_start = on_start
        self.function_name = function_name or _function_name_of(handler)
        self.init_timeout_s = float(init_timeout_s)
        self.cwd = cwd
        self.env = self._child_environment(env)
        self.cold_starts = 0
        self._lock = threading.Lock()
        self._process: _Process | None = None
        self._closed = False

    def _child_environment(self, env: dict[str, str]) -> dict[str, str]:
        region = env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or DEFAULT_REGION
        stream_day = datetime.now(UTC).strftime("%Y/%m/%d")
        child = {
            "PATH": os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin"),
            "TZ": ":UTC",
            "PYTHONUNBUFFERED": "1",
            "PYTHONUTF8": "1",
            "AWS_REGION": region,
            "AWS_DEFAULT_REGION": region,
            "AWS_EXECUTION_ENV": "AWS_Lambda_python3.13",
            "AWS_LAMBDA_FUNCTION_NAME": self.function_name,
            "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(self.memory_mb),
            "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{self.function_name}",
            "AWS_LAMBDA_LOG_STREAM_NAME": f"{stream_day}/[$LATEST]{uuid.uuid4().hex}",
            "AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand",
            "_HANDLER": self.handler,
            "AWS_CONFIG_FILE": os.devnull,
            "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        }
        if self.python_paths:
            child["LAMBDA_TASK_ROOT"] = self.python_paths[0]
        if self.enforce_memory:
            child["MALLOC_ARENA_MAX"] = "2"
        child.update(env)
        if self.caller_id is not None:
            child["AWS_SDK_UA_APP_ID"] = self.caller_id
        return child

    # -- public ---------------------------------------------------------------------------------
    @property
    def pid(self) -> int | None:
        """The current process's pid (None before the first invocation and after it died)."""
        process = self._process
        return process.pid if process is not None and process.alive() else None

    def invoke(self, event: Any) -> InvocationResult:
        event_json = json.loads(json.dumps(event))  # what Lambda would deliver; fails early if not JSON
        with self._lock:
            if self._closed:
                raise RuntimeError("worker closed")
            if self._process is not None and not self._process.alive():
                self._discard()
            request_id = str(uuid.uuid4())
            init_duration: float | None = None
            cold = self._process is None
            if cold:
                failed, init_duration = self._cold_start(request_id)
                if failed is not None:
                    return failed
            assert self._process is not None
            return self._run(self._process, event_json, request_id, cold, init_duration)

    def kill(self) -> None:
        """SIGKILL the current process and wait for its end (an invocation in flight ends
        ``killed``); the next ``invoke`` is a cold start."""
        process = self._process
        if process is not None:
            try:
                process.popen.kill()
            except ProcessLookupError:
                pass
            process.popen.wait()  # returns once it is dead (Popen serialises this with the invoking thread)

    def close(self) -> None:
        with self._lock:
            self._closed = True
            self._discard()

    def __enter__(self) -> LambdaWorker:
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()

    # -- internals ------------------------------------------------------------------------------
    def _discard(self) -> None:
        if self._process is not None:
            self._process.close()
            self._process = None

    def _cold_start(self, request_id: str) -> tuple[InvocationResult | None, float | None]:
        argv = [sys.executable, "-c", _BOOTSTRAP, str(Path(__file__).resolve())]
        process = _Process(argv, self.env, self.cwd)
        self._process = process
        self.cold_starts += 1
        address_space_limit = (self.memory_mb + ADDRESS_SPACE_ALLOWANCE_MB) * 1024 * 1024
        arn = f"arn:aws:lambda:{self.env['AWS_REGION']}:{LOCAL_ACCOUNT_ID}:function:{self.function_name}"
        init = {
            "op": "init",
            "handler": self.handler,
            "python_paths": self.python_paths,
            "address_space_limit": address_space_limit if self.enforce_memory else None,
            "invoked_function_arn": arn,
            "clock_offset_s": self.clock_offset_s,
        }
        try:
            if self.on_start is not None:
                self.on_start(process.pid)
            started = _monotonic()
            process.send(init)
            reply = process.receive(started + self.init_timeout_s)
        except _Deadline:
            signal_number = process.kill_and_reap()
            return self._failed(
                process, request_id, "timeout", started, signal_number,
                "Sandbox.Timedout", f"Init phase timed out after {self.init_timeout_s:.2f} seconds",
            ), None
        except _ChildDied:
            return self._ended(process, request_id, True, started, None), None
        except BaseException:
            self._discard()
            raise
        init_duration = _monotonic() - started
        if reply.get("op") != "ready":
            return self._ended(process, request_id, True, started, reply), None
        return None, init_duration

    def _run(
        self, process: _Process, event: Any, request_id: str, cold: bool, init_duration: float | None
    ) -> InvocationResult:
        started = _monotonic()
        deadline = started + self.timeout_s
        try:
            process.send({"op": "invoke", "event": event, "request_id": request_id, "deadline": deadline})
            reply = process.receive(deadline)
        except _Deadline:
            signal_number = process.kill_and_reap()
            return self._failed(
                process, request_id, "timeout", started, signal_number,
                "Sandbox.Timedout", f"Task timed out after {self.timeout_s:.2f} seconds", cold, init_duration,
            )
        except _ChildDied:
            return self._ended(process, request_id, cold, started, None, init_duration)
        if reply.get("op") == "out_of_memory":
            return self._ended(process, request_id, cold, started, reply, init_duration)
        duration = _monotonic() - started
        stdout, stderr = process.take_output()
        common = dict(
            request_id=request_id, pid=process.pid, cold_start=cold, duration_s=duration,
            init_duration_s=init_duration, stdout=stdout, stderr=stderr,
        )
        if reply.get("op") == "result":
            return InvocationResult(status="ok", response=json.loads(reply["payload"]), **common)
        return InvocationResult(
            status="error", error_type=reply.get("errorType"), error_message=reply.get("errorMessage"),
            stack_trace=reply.get("stackTrace") or [], **common,
        )

    def _failed(
        self, process: _Process, request_id: str, status: str, started: float, signal_number: int | None,
        error_type: str | None, error_message: str | None, cold: bool = True, init_duration: float | None = None,
        stack_trace: list[str] | None = None,
    ) -> InvocationResult:
        """A result for an invocation after which the process is gone (it is discarded here)."""
        duration = _monotonic() - started
        stdout, stderr = process.take_output()
        self._discard()
        return InvocationResult(
            status=status, request_id=request_id, pid=process.pid, cold_start=cold, duration_s=duration,
            init_duration_s=init_duration, error_type=error_type, error_message=error_message,
            stack_trace=stack_trace or [], stdout=stdout, stderr=stderr, exit_signal=signal_number,
        )

    def _ended(
        self, process: _Process, request_id: str, cold: bool, started: float, reply: dict[str, Any] | None,
        init_duration: float | None = None,
    ) -> InvocationResult:
        """The process ended, or is ending: it failed its init or ran out of memory (``reply``
        says so), or died without an answer."""
        returncode = process.reap()
        signal_number = -returncode if returncode < 0 else None
        if reply is not None:
            status, error_type, error_message = "error", reply.get("errorType"), reply.get("errorMessage")
        elif signal_number is not None:
            status, error_type = "killed", "Runtime.ExitError"
            error_message = f"Runtime exited with error: signal: {signal.Signals(signal_number).name}"
        else:
            status, error_type = "error", "Runtime.ExitError"
            error_message = f"Runtime exited with error: exit status {returncode}"
        stack_trace = (reply or {}).get("stackTrace") or []
        return self._failed(
            process, request_id, status, started, signal_number, error_type, error_message, cold, init_duration,
            stack_trace,
        )


def invoke(
    handler: str,
    event: Any,
    *,
    env: dict[str, str],
    timeout_s: float,
    memory_mb: int = 256,
    python_paths: list[str],
    caller_id: str | None = None,
    on_start: Callable[[int], None] | None = None,
    enforce_memory: bool = False,
    function_name: str | None = None,
    init_timeout_s: float = LAMBDA_INIT_TIMEOUT_S,
    cwd: str | None = None,
    clock_offset_s: float = 0.0,
) -> InvocationResult:
    """One invocation in a fresh process (a cold start); the process is SIGKILLed afterwards.

    ``clock_offset_s``: the invocation runs that many seconds in the future as far as the
    wall clock goes (``time.time``), e.g. after an SQS visibility timeout of 780 s, without the
    test waiting for it. Only the function's process sees it; timeouts still count in real time."""
    with LambdaWorker(
        handler, env=env, timeout_s=timeout_s, python_paths=python_paths, caller_id=caller_id,
        memory_mb=memory_mb, enforce_memory=enforce_memory, on_start=on_start,
        function_name=function_name, init_timeout_s=init_timeout_s, cwd=cwd, clock_offset_s=clock_offset_s,
    ) as worker:
        return worker.invoke(event)


# -- child side: the runtime ----------------------------------------------------------------------


class LambdaContext:
    """The context object of Lambda's Python runtime (awslambdaric): ``memory_limit_in_mb`` is a
    string there too (it comes from AWS_LAMBDA_FUNCTION_MEMORY_SIZE)."""

    def __init__(self, aws_request_id: str, deadline: float, invoked_function_arn: str) -> None:
        self.aws_request_id = aws_request_id
        self.function_name = os.environ.get("AWS_LAMBDA_FUNCTION_NAME")
        self.function_version = os.environ.get("AWS_LAMBDA_FUNCTION_VERSION")
        self.memory_limit_in_mb = os.environ.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE")
        self.log_group_name = os.environ.get("AWS_LAMBDA_LOG_GROUP_NAME")
        self.log_stream_name = os.environ.get("AWS_LAMBDA_LOG_STREAM_NAME")
        self.invoked_function_arn = invoked_function_arn
        self.identity = CognitoIdentity()
        self.client_context = None
        self._deadline = deadline

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - _monotonic()) * 1000))

    def __repr__(self) -> str:
        return f"LambdaContext(function_name={self.function_name!r}, aws_request_id={self.aws_request_id!r})"


class CognitoIdentity:
    def __init__(self) -> None:
        self.cognito_identity_id: str | None = None
        self.cognito_identity_pool_id: str | None = None


class _RuntimeChannel:
    """The child's ends of the two pipes (blocking)."""

    def __init__(self, command_fd: int, result_fd: int) -> None:
        self.command_fd = command_fd
        self.result_fd = result_fd

    def receive(self) -> dict[str, Any] | None:
        header = self._read_exactly(_HEADER.size)
        if header is None:
            return None
        (length,) = _HEADER.unpack(header)
        data = self._read_exactly(length)
        return None if data is None else json.loads(data)

    def _read_exactly(self, size: int) -> bytes | None:
        data = b""
        while len(data) < size:
            chunk = os.read(self.command_fd, size - len(data))
            if not chunk:
                return None
            data += chunk
        return data

    def send(self, message: dict[str, Any]) -> None:
        self.send_bytes(_frame(message))

    def send_bytes(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            view = view[os.write(self.result_fd, view):]


def _frame(message: dict[str, Any]) -> bytes:
    data = json.dumps(message).encode("utf-8")
    return _HEADER.pack(len(data)) + data


def _decimal_as_float(value: Any) -> Any:
    if isinstance(value, decimal.Decimal):
        return float(value)
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


def _error_message(exc: BaseException, error_type: str | None = None) -> dict[str, Any]:
    return {
        "errorType": error_type or type(exc).__name__,
        "errorMessage": str(exc),
        "stackTrace": traceback.format_list(
            [frame for frame in traceback.extract_tb(exc.__traceback__) if frame.filename != __file__]
        ),
    }


def _load_handler(handler: str) -> Callable[[Any, Any], Any]:
    module_ref, function_name = _split_handler(handler)
    if module_ref.endswith(".py"):
        path = Path(module_ref).resolve()
        name = path.stem
        spec = importlib.util.spec_from_file_location(name, path)
        if spec is None or spec.loader is None:
            raise ImportError(f"cannot load {path}")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    else:
        name = module_ref
        module = importlib.import_module(module_ref)
    function = getattr(module, function_name, None)
    if function is None:
        raise _HandlerNotFound(f"Handler '{function_name}' missing on module '{name}'")
    return function


class _HandlerNotFound(Exception):
    pass


def _install_out_of_memory_kill(channel: _RuntimeChannel) -> None:
    """On the raise of a MemoryError, before any handler ``except``/``finally`` runs: report it and
    SIGKILL this process (Lambda's OOM kill stops the process wherever it is)."""
    report = _frame({"op": "out_of_memory", "errorType": "Runtime.OutOfMemory",
                     "errorMessage": "Runtime exited with error: signal: killed (memory limit exceeded)"})
    tool_id = 4  # sys.monitoring ids 0-2 and 5 are reserved for debuggers, coverage, profilers, optimizers

    def on_raise(_code: Any, _offset: int, exception: BaseException) -> Any:
        if isinstance(exception, MemoryError):
            try:
                channel.send_bytes(report)
            finally:
                os.kill(os.getpid(), signal.SIGKILL)
        return None

    sys.monitoring.use_tool_id(tool_id, "lambda-memory-limit")
    sys.monitoring.register_callback(tool_id, sys.monitoring.events.RAISE, on_raise)
    sys.monitoring.set_events(tool_id, sys.monitoring.events.RAISE)


def _exit_now(code: int) -> None:
    """End the runtime without running the function's ``atexit`` code (Lambda does not run it)."""
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def run_runtime(command_fd: int, result_fd: int) -> None:
    """The child's main loop (see the module docstring)."""
    channel = _RuntimeChannel(command_fd, result_fd)
    init = channel.receive()
    if init is None:
        _exit_now(0)
    if init.get("address_space_limit"):
        import resource

        limit = int(init["address_space_limit"])
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
        _install_out_of_memory_kill(channel)
    if init.get("clock_offset_s"):
        import time

        _real_time, offset = time.time, float(init["clock_offset_s"])
        time.time = lambda: _real_time() + offset  # the function's wall clock only (see ``invoke``)
    paths = list(init["python_paths"])
    sys.path[:] = paths + [p for p in sys.path if p not in paths and p != ""]
    try:
        handler = _load_handler(init["handler"])
    except _HandlerNotFound as exc:
        channel.send({"op": "init_error", **_error_message(exc, "Runtime.HandlerNotFound")})
        _exit_now(1)
    except SyntaxError as exc:
        channel.send({"op": "init_error", **_error_message(exc, "Runtime.UserCodeSyntaxError")})
        _exit_now(1)
    except Exception as exc:  # noqa: BLE001 - reported as Lambda does
        message = _error_message(exc, "Runtime.ImportModuleError")
        message["errorMessage"] = f"Unable to import module '{_split_handler(init['handler'])[0]}': {exc}"
        traceback.print_exc()
        channel.send({"op": "init_error", **message})
        _exit_now(1)
    channel.send({"op": "ready"})
    while True:
        request = channel.receive()
        if request is None:  # the parent closed the pipe or died
            _exit_now(0)
        context = LambdaContext(request["request_id"], request["deadline"], init["invoked_function_arn"])
        try:
            response = handler(request["event"], context)
        except Exception as exc:  # noqa: BLE001 - reported as Lambda does
            error = _error_message(exc)
            trace = "".join(error["stackTrace"])
            sys.stderr.write(f"[ERROR] {error['errorType']}: {error['errorMessage']}\n{trace}")
            reply = {"op": "error", **error}
        else:
            try:
                reply = {"op": "result", "payload": json.dumps(response, default=_decimal_as_float)}
            except (TypeError, ValueError) as exc:
                reply = {"op": "error", "errorType": "Runtime.MarshalError",
                         "errorMessage": f"Unable to marshal response: {exc}", "stackTrace": []}
        sys.stdout.flush()
        sys.stderr.flush()
        channel.send(reply)


__all__ = [
    "ADDRESS_SPACE_ALLOWANCE_MB",
    "InvocationResult",
    "LambdaContext",
    "LambdaWorker",
    "invoke",
    "run_runtime",
]
