"""The operations console: dashboard, transaction search and timelines, the exception queue
with replay and mapping fixes, and the cross-reference browser, under /console."""

from q2c.console.app import console_router, mount_console

__all__ = ["console_router", "mount_console"]
