"""``@carbonkit.track``: measure every call of a function.

::

    @carbonkit.track(location="DK-DK2", log_dir="runs")
    def train():
        ...

    train()
    print(train.last_report)

Each call builds a :class:`~carbonkit.Tracker` with the decorator's arguments (the same as the
tracker's), runs the function, stops the tracker and returns the function's value. The report of
the last call that finished is ``fn.last_report``; the tracker of the call under way (or of the
last one) is ``fn.tracker``, for marking epochs from inside. With ``tracker_arg="tracker"`` the
tracker is also passed to the function as that keyword argument. When the function raises,
the tracker is stopped (the report covers the run up to the exception) and the exception is
raised again, unchanged. ``async def`` functions are measured the same way, from the first
step of the coroutine to its end.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol, TypeVar, overload

from .errors import ConfigError

if TYPE_CHECKING:
    from .records import Report
    from .tracker import Tracker

__all__ = ["TrackedFunction", "track"]

F = TypeVar("F", bound=Callable[..., Any])


class TrackedFunction(Protocol):
    """A function wrapped by :func:`track`: callable as before, with its last report."""

    last_report: Report | None
    tracker: Tracker | None

    def __call__(self, *args: Any, **kwargs: Any) -> Any: ...


@overload
def track(fn: F, /) -> F: ...


@overload
def track(fn: None = None, /, *, tracker_arg: str | None = None, **tracker_kwargs: Any) -> Callable[[F], F]: ...


def track(fn: Callable[..., Any] | None = None, /, *, tracker_arg: str | None = None, **tracker_kwargs: Any) -> Any:
    """Measure each call of the decorated function with a :class:`~carbonkit.Tracker`.

    Use as ``@track`` or ``@track(**tracker_arguments)``.

    :param tracker_arg: Name of a keyword argument to pass the running tracker in.
    :param tracker_kwargs: Arguments for :class:`~carbonkit.Tracker` (``epochs``, ``location``,
        ``budget_g``...). They are checked when the function is called, like the tracker's.
    :raises ConfigError: when ``tracker_arg`` is not an identifier, or ``track`` is given
        something other than a function.
    """
    if tracker_arg is not None and not (isinstance(tracker_arg, str) and tracker_arg.isidentifier()):
        raise ConfigError(f"tracker_arg={tracker_arg!r} is not accepted: it must be a keyword argument name or None")
    _check_arguments(tracker_kwargs)
    if fn is None:
        return lambda f: track(f, tracker_arg=tracker_arg, **tracker_kwargs)
    if not callable(fn):
        raise ConfigError(
            f"track() decorates a function, got {fn!r}; pass tracker arguments by keyword: @track(epochs=10)"
        )
    from .tracker import Tracker

    def start(kwargs: dict[str, Any]) -> Tracker:
        tracker = Tracker(**tracker_kwargs)
        wrapper.tracker = tracker  # type: ignore[attr-defined]
        if tracker_arg is not None:
            kwargs[tracker_arg] = tracker
        return tracker

    def finish(tracker: Tracker) -> None:
        wrapper.last_report = tracker.stop()  # type: ignore[attr-defined]

    if inspect.iscoroutinefunction(fn):

        @functools.wraps(fn)
        async def wrapper(*args: Any, **kwargs: Any) -> Any:
            tracker = start(kwargs)
            try:
                return await fn(*args, **kwargs)
            finally:
                finish(tracker)

    else:

        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            tracker = start(kwargs)
            try:
                return fn(*args, **kwargs)
            finally:
                finish(tracker)

    wrapper.last_report = None  # type: ignore[attr-defined]
    wrapper.tracker = None  # type: ignore[attr-defined]
    return wrapper


def _check_arguments(kwargs: dict[str, Any]) -> None:
    """Check the tracker arguments when the function is decorated, not first when it is called."""
    import attrs

    from .config import Config
    from .tracker import Tracker, _check_on_over_budget

    accepted = [n for n in inspect.signature(Tracker.__init__).parameters if n != "self"]
    unknown = sorted(set(kwargs) - set(accepted))
    if unknown:
        raise ConfigError(f"track() got {unknown[0]!r}, which Tracker does not take; it takes {', '.join(accepted)}")
    fields = {a.name for a in attrs.fields(Config)}
    values = {k: v for k, v in kwargs.items() if k in fields and v is not None and k != "predictor"}
    Config(**values)  # raises ConfigError naming the argument
    if "on_over_budget" in kwargs:
        _check_on_over_budget(kwargs["on_over_budget"])
