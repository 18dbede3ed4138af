"""One step of one change (a delete, an update or a create) as apply carries it out: how a step
ends early, what AWS had accepted by then (StepProgress), and the Outcome that makes, in words.

A step whose calls AWS all accepted is done, only perhaps not seen settling. A replace is done
only once its create was accepted: between its halves its source has no mapping at all, and the
messages say so in plain words.
"""

from __future__ import annotations

from dataclasses import dataclass

from botocore.exceptions import BotoCoreError, ClientError

from .aws import describe_error
from .model import function_of_address
from .outcomes import Outcome
from .plan import Change

# -- how a step ends early ----------------------------------------------------------------------


class WaitTimeout(Exception):
    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        super().__init__(f"still not settled after {seconds:.0f} s")


class Interrupted(Exception):
    pass


class Unreconcilable(Exception):
    """A create met an existing mapping that cannot be made the desired one in place."""


# -- what AWS accepted -------------------------------------------------------------------------


@dataclass
class StepProgress:
    """What AWS has accepted so far of one step of one change (each worker keeps its own), so
    that a step that stops early is reported by what was really done."""

    uuid: str | None = None  # the mapping the accepted calls concern
    call: str = ""  # the last mutating call AWS accepted: "create", "update" or "delete"
    complete: bool = False  # AWS accepted every call of the step; at most settling is left
    adopted: bool = False
    state: str | None = None  # the mapping's state as last seen

    def accepted(self) -> str:
        """What AWS accepted, in words."""
        if self.adopted:
            found = f"a mapping for this source already existed ({self.uuid})"
            if self.call == "update":
                return f"{found}; esm adopted it and AWS accepted its update to the spec"
            return f"{found} and matches the spec; esm adopted it"
        if self.call == "create":
            return f"AWS created {self.uuid}"
        return f"AWS accepted the {self.call} of {self.uuid}"

    def unsettled(self, stopped: Exception | None) -> str:
        """Why settling was not seen: interrupted (None), a timeout, or a failed state read."""
        state = self.state or {"create": "Creating", "update": "Updating"}.get(self.call, "")
        state = state or "Deleting"
        if stopped is None:
            return f"it was still {state} when apply was interrupted"
        if isinstance(stopped, WaitTimeout):
            return f"it was still {state}, not settled after {stopped.seconds:.0f} s"
        return f"its state could not be read: {reason_of(stopped)}"


def reason_of(exc: Exception) -> str:
    """Why a call or a wait failed, in one line: AWS's code and message where AWS answered."""
    if isinstance(exc, (ClientError, BotoCoreError)):
        failure = describe_error("", exc)
        return f"{failure.code}: {failure.aws_message}"
    return str(exc)


# -- the outcome of a step ---------------------------------------------------------------------


def not_started(phase: str, change: Change) -> Outcome:
    """A step that an interrupt kept from starting."""
    message = "interrupted before it started"
    if phase == "create" and change.action == "replace":
        message = (
            f"interrupted: the old mapping {change.uuid} was deleted and the new one not "
            f"created, so {_no_mapping_now(change)}; re-run apply"
        )
    return Outcome(change, "skipped", message, phase)


def finished(phase: str, change: Change, progress: StepProgress) -> Outcome:
    """A step that ran to its end: done, and settled."""
    created = progress.uuid if phase == "create" else None
    message = ""
    if progress.adopted:
        message = _after_old_deleted(change, progress.accepted())
    return Outcome(change, "done", message, phase, created, adopted=progress.adopted)


def unfinished(
    phase: str, change: Change, progress: StepProgress, stopped: Exception | None
) -> Outcome:
    """The outcome of a step that ended early: interrupted (`stopped` None) or by an error."""
    status = "skipped" if stopped is None else "failed"
    reason = "interrupted while waiting" if stopped is None else reason_of(stopped)
    if change.action == "replace" and phase == "delete":
        return Outcome(
            change, status, _replace_delete_ended(change, progress, stopped, reason), phase
        )
    if progress.complete:
        created = progress.uuid if phase == "create" else None
        message = _after_old_deleted(
            change, f"{progress.accepted()}; {progress.unsettled(stopped)}"
        )
        return Outcome(
            change, "done", message, phase, created, adopted=progress.adopted, settling=True
        )
    if change.action == "replace":  # the create half, not accepted
        return Outcome(change, status, _replace_create_refused(change, stopped, reason), phase)
    if progress.call:  # settings accepted, tags not yet changed
        reason += f" ({progress.accepted()}, but its tags were not changed)"
    return Outcome(change, status, reason, phase)


def _replace_delete_ended(
    change: Change, progress: StepProgress, stopped: Exception | None, reason: str
) -> str:
    """The delete half of a replace ended early; its create will not run."""
    if not progress.complete:
        if stopped is None:
            return "interrupted before the old mapping was deleted; nothing was changed"
        kept = f"the old mapping {change.uuid} is unchanged and the new one was not created"
        return f"{reason} ({kept})"
    return (
        f"AWS accepted the delete of the old mapping {change.uuid}, but "
        f"{progress.unsettled(stopped)}; the new one was not created, so "
        f"{change.event_source} will have NO mapping for "
        f"{function_of_address(change.address)} once it is gone: re-run apply"
    )


def _replace_create_refused(change: Change, stopped: Exception | None, reason: str) -> str:
    """The create half of a replace was not accepted, after its old mapping was deleted."""
    if stopped is None:
        return (
            f"the old mapping {change.uuid} was deleted; interrupted before the new one "
            f"was created, so {_no_mapping_now(change)}; re-run apply"
        )
    if isinstance(stopped, Unreconcilable):  # the source does have a mapping, not ours
        message = f"the old mapping {change.uuid} was deleted; the new one could not be "
        return message + f"created: {reason}"
    return (
        f"the old mapping {change.uuid} was deleted; the new one could not be created, "
        f"so {_no_mapping_now(change)}: {reason}"
    )


def _after_old_deleted(change: Change, message: str) -> str:
    """A done step's message; for a replace, saying first that its old mapping was deleted."""
    if change.action == "replace":
        return f"the old mapping {change.uuid} was deleted; {message}"
    return message


def _no_mapping_now(change: Change) -> str:
    return f"{change.event_source} has NO mapping for {function_of_address(change.address)} now"
