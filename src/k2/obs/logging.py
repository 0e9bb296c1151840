"""Configure structlog once, at an entry point; library modules only call ``get_logger``."""

from __future__ import annotations

import faulthandler
import logging
import signal
import sys
import threading

import structlog

from k2.settings import ObsSettings


def configure_logging(settings: ObsSettings) -> None:
    """Send structured log lines to stderr: console lines on a terminal, JSON otherwise; a thread's
    uncaught exception is one of them. SIGUSR1 writes every thread's stack to stderr.

    Args:
        settings: the level and format to use.
    """
    level = logging.getLevelNamesMapping()[settings.log_level.value]
    as_json = settings.log_format == "json" or (settings.log_format == "auto" and not sys.stderr.isatty())
    renderer: structlog.typing.Processor = (
        structlog.processors.JSONRenderer() if as_json else structlog.dev.ConsoleRenderer()
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=_stderr_logger,
        cache_logger_on_first_use=False,
    )
    threading.excepthook = _log_thread_crash
    if hasattr(signal, "SIGUSR1") and sys.__stderr__ is not None:
        # `kill -USR1 <pid>`: every thread's stack on the process's own stderr, for one that hangs.
        faulthandler.register(signal.SIGUSR1, file=sys.__stderr__, all_threads=True)


def _log_thread_crash(args: threading.ExceptHookArgs) -> None:
    """A thread's uncaught exception as one log event: a traceback printed to stderr by Python's
    own hook would land between (and inside) the JSON lines other threads write.
    """
    if args.exc_type is SystemExit:
        return
    structlog.get_logger(__name__).error(
        "thread_crashed",
        thread=args.thread.name if args.thread is not None else None,
        exc_info=(args.exc_type, args.exc_value, args.exc_traceback),
    )


def _stderr_logger(*_args: object) -> structlog.PrintLogger:
    """A logger on the process's stderr as it is now (tests and servers may replace the stream)."""
    return structlog.PrintLogger(sys.stderr)
