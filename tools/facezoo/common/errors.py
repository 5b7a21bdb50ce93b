"""The base of every stage's user-facing error type."""


class FacezooError(Exception):
    """Bad input or a bad environment a user can fix; the message is one line naming what and where."""


class Interrupted(KeyboardInterrupt):
    """SIGINT or SIGTERM arrived; `code` is the exit status the command ends with (130 or 143)."""

    def __init__(self, signum: int):
        super().__init__(signum)
        self.signum = signum
        self.code = 128 + signum
