"""Read live state: function ARNs, mappings (in bulk), tags where the spec manages them.

Cost is API calls: mappings are listed unfiltered, 100 a page, and matched to functions on our
side (AWS's FunctionName filter does not say whether a name also returns its aliases' mappings).
A Get is made only where List hides data: filters encrypted with a KMS key.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import replace
from typing import Any, TypeVar

from botocore.exceptions import BotoCoreError, ClientError

from .aws import AwsContext, describe_error, error_code
from .engine.protocol import MAX_PAGES, LambdaMappings
from .errors import EsmError
from .model import LiveMapping, parse_function_ref

T = TypeVar("T")

FUNCTIONS_PAGE_SIZE = 50  # ListFunctions' most per page
LIST_FUNCTIONS_MIN = 3  # for fewer functions, one GetFunction each is no dearer


def unless_missing(call: Callable[[], T], concerning: str) -> T | None:
    """The call's answer, or None when AWS answers ResourceNotFoundException; any other
    failure in words naming what it concerns."""
    try:
        return call()
    except ClientError as exc:
        if error_code(exc) == "ResourceNotFoundException":
            return None
        raise describe_error(concerning, exc) from None
    except BotoCoreError as exc:
        raise describe_error(concerning, exc) from None


def function_pages(api: LambdaMappings) -> Iterator[dict[str, Any]]:
    """Pages of ListFunctions, FUNCTIONS_PAGE_SIZE a page, at most MAX_PAGES."""
    marker: str | None = None
    for _ in range(MAX_PAGES):
        params: dict[str, Any] = {"MaxItems": FUNCTIONS_PAGE_SIZE}
        if marker:
            params["Marker"] = marker
        page = api.call("list_functions", **params)
        yield page
        marker = page.get("NextMarker")
        if not marker:
            return
    raise EsmError(f"ListFunctions is still paging after {MAX_PAGES} pages; refusing to go on")


class LiveReader:
    """Reads through the mapping API's protocol, so its retries are apply's."""

    def __init__(self, aws: AwsContext) -> None:
        self.aws = aws
        self.api = LambdaMappings(aws.lambda_client)

    def function_arn(self, ref: str) -> str:
        identity = self.aws.identity()
        return parse_function_ref(ref).arn(
            self.aws.region, identity["account"], identity["partition"]
        )

    def missing_functions(self, refs: list[str]) -> list[str]:
        """Functions (with their qualifier) that do not exist.

        Unqualified functions of this account and region are looked up in ListFunctions (50 a
        page) while that is cheaper than one GetFunction each; the rest, and anything the list
        leaves open, by GetFunction.
        """
        identity = self.aws.identity()
        region, account, partition = self.aws.region, identity["account"], identity["partition"]
        listable: dict[str, str] = {}  # unqualified ARN -> ref
        for ref in refs:
            parsed = parse_function_ref(ref)
            local = parsed.region in (None, region) and parsed.account in (None, account)
            if local and parsed.qualifier in (None, "$LATEST"):
                listable[replace(parsed, qualifier=None).arn(region, account, partition)] = ref
        settled = self._listed(listable) if len(listable) >= LIST_FUNCTIONS_MIN else {}
        missing = [ref for ref, exists in settled.items() if not exists]
        for ref in refs:
            if ref not in settled and not self._function_exists(ref, region, account, partition):
                missing.append(ref)
        return sorted(missing, key=refs.index)

    def _listed(self, wanted: dict[str, str]) -> dict[str, bool]:
        """Which of these functions (unqualified ARN -> ref) ListFunctions settles: found, or
        known missing once every page was read. Stops when the pages left could cost more
        than asking for the unsettled ones one by one."""
        found: set[str] = set()
        pages = 0
        try:
            for page in function_pages(self.api):
                pages += 1
                found |= {f.get("FunctionArn") for f in page.get("Functions", [])} & set(wanted)
                if len(found) == len(wanted):
                    break
                if pages >= len(wanted) - len(found):
                    return {wanted[arn]: True for arn in found}
            else:
                return {ref: arn in found for arn, ref in wanted.items()}  # every page read
        except ClientError as exc:
            if error_code(exc) not in ("AccessDeniedException", "AccessDenied"):
                raise describe_error("listing functions", exc) from None
            return {}  # no lambda:ListFunctions: ask for each function instead
        except BotoCoreError as exc:
            raise describe_error("listing functions", exc) from None
        return {ref: True for ref in wanted.values()}

    def _function_exists(self, ref: str, region: str, account: str, partition: str) -> bool:
        parsed = parse_function_ref(ref)
        kwargs = {"FunctionName": replace(parsed, qualifier=None).arn(region, account, partition)}
        if parsed.qualifier:
            kwargs["Qualifier"] = parsed.qualifier
        found = unless_missing(lambda: self.api.call("get_function", **kwargs), f"function {ref}")
        return found is not None

    def mapping_if_any(self, uuid: str) -> dict[str, Any] | None:
        """GetEventSourceMapping, or None when AWS has no such mapping."""
        return unless_missing(lambda: self.api.get(uuid), f"mapping {uuid}")

    def mappings(self, function_arns: set[str] | None) -> list[LiveMapping]:
        """Live mappings of these functions, or of all (None); all pages of one unfiltered List."""
        found: list[LiveMapping] = []
        try:
            for page in self.api.pages():
                for item in page.get("EventSourceMappings", []):
                    if function_arns is not None and item.get("FunctionArn") not in function_arns:
                        continue
                    if item.get("KMSKeyArn") and not item.get("FilterCriteria"):
                        # List returns encrypted filters as null; Get decrypts them.
                        item = self.api.get(item["UUID"])
                    found.append(LiveMapping.from_response(item))
        except (ClientError, BotoCoreError) as exc:
            raise describe_error("listing event source mappings", exc) from None
        return found

    def read_tags(self, mapping: LiveMapping) -> None:
        if not mapping.esm_arn:
            raise EsmError(f"mapping {mapping.uuid} has no ARN to read its tags from")
        try:
            mapping.tags = self.api.list_tags(mapping.esm_arn)
        except (ClientError, BotoCoreError) as exc:
            raise describe_error(f"tags of mapping {mapping.uuid}", exc) from None
