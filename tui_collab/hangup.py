"""Drivers that end the app when its terminal or pipe goes away.

Textual's terminal driver reads its input in a loop that treats end of input as "no
data yet": once the terminal is gone (a killed tmux, a closed SSH session) every
`select` says readable, every read returns nothing, and the app spins a core for ever.
Its web driver's reader stops at end of input but tells nobody, so the app lives on
with no one to see it. Both variants here ask the app to exit instead.
"""

from __future__ import annotations

import logging
import os
import selectors
from codecs import getincrementaldecoder
from typing import Any

from textual import messages
from textual._xterm_parser import XTermParser
from textual.driver import Driver
from textual.drivers.linux_driver import LinuxDriver
from textual.drivers.web_driver import WebDriver

log = logging.getLogger(__name__)

READ_SIZE = 4096
TICK_S = 0.1
"""How long a read waits: the parser's tick (a lone Esc) needs input to stop by."""


def _ask_to_exit(driver: Driver) -> None:
    """From the input thread: end the app as if the person had quit."""
    log.info("input ended: the terminal is gone, exiting")
    driver._app.post_message(messages.ExitApp())  # post_message is thread-safe


class HangupLinuxDriver(LinuxDriver):
    """Textual's terminal driver, except that end of input exits the app."""

    def run_input_thread(self) -> None:
        selector = selectors.SelectSelector()
        selector.register(self.fileno, selectors.EVENT_READ)
        parser = XTermParser(self._debug)
        decode = getincrementaldecoder("utf-8")().decode
        try:
            while not self.exit_event.is_set():
                if selector.select(TICK_S):
                    try:
                        data = os.read(self.fileno, READ_SIZE)
                    except OSError:  # EIO: the terminal hung up
                        data = b""
                    if not data:
                        _ask_to_exit(self)
                        return
                    for event in parser.feed(decode(data)):
                        self.process_message(event)
                for event in parser.tick():
                    self.process_message(event)
        finally:
            selector.close()


class HangupWebDriver(WebDriver):
    """Textual's web driver, except that end of input (the server side closed the pipe
    or died) exits the app."""

    def run_input_thread(self) -> None:
        super().run_input_thread()
        if not self.exit_event.is_set():
            _ask_to_exit(self)


def ending_driver(driver: type[Driver]) -> type[Driver]:
    """The variant of `driver` that exits on end of input; other drivers as they are."""
    variants: dict[type[Any], type[Driver]] = {
        LinuxDriver: HangupLinuxDriver,
        WebDriver: HangupWebDriver,
    }
    return variants.get(driver, driver)
