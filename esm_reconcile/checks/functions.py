"""The functions a spec file names: references that parse, and functions and sources in regions
(and accounts) where they can meet. Found offline, from the file alone."""

from __future__ import annotations

from ..errors import SpecError
from ..loader import dotted
from ..model import DesiredMapping, FunctionRef, SpecFile, parse_arn, parse_function_ref


def function_ref_error(ref: str) -> str | None:
    """Why `ref` is not a function reference; None when it is one."""
    try:
        parse_function_ref(ref)  # refuses spaces, control characters and a final newline too
    except ValueError as exc:
        return str(exc)
    return None


def region_errors(spec_file: SpecFile, region: str | None = None) -> list[SpecError]:
    """Functions and sources that cannot meet, found offline: a function ARN in another region
    than the file's (or in another account than its account_id), a source ARN in another
    region than its function (a mapping lives in its function's region and polls a source
    there). `region` is where the file goes once the command line resolved it; the file's own
    `region:` comes first. With neither, the sources of its bare-named functions, which all go
    to one region, must at least agree with each other."""
    file_region = spec_file.region or region
    functions = [
        (function, parse_function_ref(function))
        for function in spec_file.functions
        if not function_ref_error(function)  # the others are reported already
    ]
    errors: list[SpecError] = []
    for function, ref in functions:
        errors += _function_arn_errors(spec_file, function, ref, file_region)
    return errors + _source_region_errors(spec_file, functions, file_region)


def _function_arn_errors(
    spec_file: SpecFile, function: str, ref: FunctionRef, file_region: str | None
) -> list[SpecError]:
    """A function ARN in another region or account than the file's."""
    messages = []
    if ref.region and file_region and ref.region != file_region:
        messages.append(
            f"the function ARN is in region {ref.region}, but this file's region is "
            f"{file_region}; put the function in a file for {ref.region}"
        )
    if ref.account and spec_file.account_id and ref.account != spec_file.account_id:
        messages.append(
            f"the function ARN is in account {ref.account}, but this file's account_id "
            f"is {spec_file.account_id}"
        )
    line = spec_file.function_lines.get(function, 0)
    return [
        SpecError(spec_file.path, line, dotted(("functions", function)), message)
        for message in messages
    ]


def _source_region_errors(
    spec_file: SpecFile, functions: list[tuple[str, FunctionRef]], file_region: str | None
) -> list[SpecError]:
    """Each source in another region than its function; where the file does not say which
    region its bare-named functions are in, each source in another region than the first."""
    errors: list[SpecError] = []
    first_unplaced: DesiredMapping | None = None  # a bare-named function's source, no region
    for function, ref in functions:
        function_region = ref.region or file_region
        for desired in spec_file.functions[function]:
            source_region = _region_of_source(desired)
            if not source_region:
                continue
            if function_region is not None:
                whose = "its ARN" if ref.region else "this file's region"
                message = _source_elsewhere(source_region, function_region, whose)
            elif first_unplaced is None:
                first_unplaced = desired
                continue
            else:
                message = _sources_disagree(source_region, first_unplaced)
            if message:
                errors.append(_at_source(desired, message))
    return errors


def _source_elsewhere(source_region: str, function_region: str, whose: str) -> str | None:
    if source_region == function_region:
        return None
    return (
        f"the source is in region {source_region}, but the function is in "
        f"{function_region} ({whose}); a mapping's source must be in its "
        "function's region"
    )


def _sources_disagree(source_region: str, first: DesiredMapping) -> str | None:
    other = _region_of_source(first)
    if source_region == other:
        return None
    return (
        f"the source is in region {source_region}, but the source of "
        f"{first.function} (line {first.line}) is in {other}; "
        "this file's functions are all in one region, and a mapping's source must "
        "be in its function's region"
    )


def _at_source(desired: DesiredMapping, message: str) -> SpecError:
    return SpecError(
        desired.file,
        desired.key_lines.get("event_source_arn", desired.line),
        dotted(("functions", desired.function, desired.index, "event_source_arn")),
        message,
    )


def _region_of_source(desired: DesiredMapping) -> str | None:
    """The region in the source's ARN; None for self-managed Kafka or an ARN without one."""
    arn = desired.settings.get("event_source_arn")
    parsed = parse_arn(arn) if arn else None
    return (parsed.region if parsed else None) or None
