"""The development simulator's state in a file, so `make run` twice shows the same bots.

Real Hummingbot containers outlive a dashboard restart; the simulator started by `make run`
lives in the same process as the dashboard, so without this file every restart would start
with new demo bots under new names, and the definitions adopted last time would read Missing.
Saved every few seconds when it changed (written to a temporary file, then renamed, so a
killed process leaves the previous copy whole); `make run` saves once more on exit.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from pathlib import Path

from .state import SimulatorState

log = logging.getLogger(__name__)


class StateFile:
    def __init__(self, path: Path, state: SimulatorState):
        self.path = path
        self.state = state
        self._written: str | None = None
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._saver: threading.Thread | None = None

    def load(self) -> bool:
        """Restore the state from the file; False (state untouched) when there is none or
        it cannot be read, which the caller treats as a first start."""
        try:
            text = self.path.read_text()
            self.state.restore(json.loads(text))
        except FileNotFoundError:
            return False
        except (OSError, ValueError, KeyError, TypeError) as exc:
            log.warning("simulator state in %s not used: %s", self.path, exc)
            return False
        self._written = text
        return True

    def save(self) -> None:
        text = json.dumps(self.state.saved(), default=str)
        with self._lock:
            if text == self._written:
                return
            self.path.parent.mkdir(parents=True, exist_ok=True)
            temporary = self.path.with_suffix(".tmp")
            temporary.write_text(text)
            os.replace(temporary, self.path)
            self._written = text

    def keep_saved(self, every_seconds: float = 2.0) -> None:
        """Save in a daemon thread every few seconds, until `close`."""

        def loop() -> None:
            while not self._stop.wait(every_seconds):
                try:
                    self.save()
                except OSError as exc:  # a full disk must not take the dashboard down
                    log.warning("could not save the simulator state: %s", exc)

        self._saver = threading.Thread(target=loop, name="simulator-state-file", daemon=True)
        self._saver.start()

    def close(self) -> None:
        """Stop saving in the background, then save what the simulator holds now (the last
        word, on exit): a stopped simulator's thread must not outlive it."""
        self._stop.set()
        if self._saver is not None:
            self._saver.join()
        self.save()
