"""Where the console's browser tests and screenshot script find Chromium and a live server."""

from __future__ import annotations

from q2c.serving import free_port, serving

__all__ = ["CHROMIUM", "free_port", "serving"]

CHROMIUM = "/usr/bin/chromium"  # Debian's chromium (apt-get install chromium)
