"""`esm show PLANFILE`: a saved plan rendered as `esm plan` renders it, without calling AWS.

A saved plan is untrusted input, so what is shown is not the file's stored changes but the plan
derived again, offline, from the spec text and live state the file recorded (as `esm apply
PLANFILE` derives what it carries out); a file whose stored changes differ from that, or that
is damaged, is refused with one line (EsmError). No client is made and no AWS call is sent.
"""

from __future__ import annotations

from . import saved_plan
from .plan import Plan
from .planning import merge_plans
from .render import render
from .saved_plan_check import rederived_plans


def saved_plan_view(path: str) -> Plan:
    """The plan a saved plan file holds, as apply would carry it out: each part derived again
    offline, several regions or accounts merged as `plan` shows them. EsmError (one line) when
    the file cannot be read, is not a saved plan, or was edited or damaged."""
    saved = saved_plan.load(path)
    plans = rederived_plans(path, saved)
    merged = merge_plans(plans)
    if len(plans) > 1 and not merged.scopes:
        # Every part's region and account, those without changes too.
        merged.scopes = [(part.region, part.account) for part in saved]
    return merged


def show_saved_plan(path: str, fmt: str = "text", color: bool = False) -> str:
    """`esm show PLANFILE --format text|json|markdown`: the saved plan, rendered by the
    renderers `esm plan` uses (so the JSON is the SPEC's plan object)."""
    return render(saved_plan_view(path), fmt, color=color)
