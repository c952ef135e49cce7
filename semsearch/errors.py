"""The library's exceptions: one root, :class:`SemsearchError`, each keeping its built-in base.

Catch ``SemsearchError`` to catch every problem semsearch reports about its input; catch the
built-in base (``KeyError``, ``ValueError``, ...) where that reads better. The command line
prints these (and ``FileNotFoundError``) as one line, ``semsearch: error: ...``; anything else
is a bug and shows its traceback.

=========================  ====================  ===============================================
class                      built-in base         raised for
=========================  ====================  ===============================================
``InputError``             ``ValueError``        a value or file semsearch cannot use
``InputTypeError``         ``TypeError``         a value of the wrong type (a str for a list, ...)
``UnknownIdError``         ``KeyError``          an image or caption id that is not there
``UnknownQueryError``      ``ValueError``        a query none of whose words is known
``UnsafeFileError``        ``ValueError``        a file whose loading would run code
``MissingExtraError``      ``ImportError``       an optional package that is not installed
``TrainingError``          ``RuntimeError``      training that diverged or failed
``SaveConflictError``      ``OSError``           another process is saving to the same place
=========================  ====================  ===============================================

Example
-------
>>> try:
...     raise UnknownIdError("unknown COCO image id 7")
... except SemsearchError as e:
...     print(e)
unknown COCO image id 7
"""
from __future__ import annotations


class SemsearchError(Exception):
    """Root of every exception semsearch raises on purpose."""


class InputError(SemsearchError, ValueError):
    """A value or a file that semsearch cannot use; the message names it and says why."""


class InputTypeError(SemsearchError, TypeError):
    """A value of the wrong type, e.g. one string where a list of captions is expected."""


class UnknownIdError(SemsearchError, KeyError):
    """An image or caption id (or image key) that the loaded data does not contain."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class UnknownQueryError(InputError):
    """A text none of whose words the text encoder knows: its embedding would be all zeros."""


class UnsafeFileError(InputError):
    """A file whose loading would run code (e.g. a pickle naming anything but plain arrays)."""


class MissingExtraError(SemsearchError, ImportError):
    """An optional dependency (``pip install semsearch[EXTRA]``) is not installed."""


class TrainingError(SemsearchError, RuntimeError):
    """Training stopped: the loss diverged (NaN or inf) or a step failed; the model is unchanged."""


class SaveConflictError(SemsearchError, OSError):
    """Another process holds the lock on the folder or file being saved."""
