"""Public import path for notifiers: `from dagrunner.notifications import BaseNotifier, FileNotifier`."""

from dagrunner.authoring.notifier import BaseNotifier, FileNotifier, LogNotifier

__all__ = ["BaseNotifier", "FileNotifier", "LogNotifier"]
