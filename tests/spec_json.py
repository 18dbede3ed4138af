"""The key sets of SPEC's JSON documents ("Plan output", "Status output"), for tests that check
an output has exactly the SPEC's shape."""

PLAN_KEYS = {"format_version", "changes", "summary", "warnings"}
CHANGE_KEYS = {
    "action",
    "address",
    "function_arn",
    "event_source",
    "uuid",
    "fields",
    "region",
    "account",
}
APPLY_KEYS = {"format_version", "plan", "outcomes", "summary"}
