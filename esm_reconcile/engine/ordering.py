"""Which changes of a plan wait for which.

SPEC ("Apply semantics"): deletes, and the delete half of replaces, go first, each waited until
it is gone; then updates and creates. That order is also what AWS needs: a Deleting mapping
still holds its (function, source), so a replace's create, or a create of that identity, must
wait until it is gone; a Kafka consumer group freed by a delete is free only then; and a create
whose identity a mapping still Deleting at plan time holds waits for that one
(`Change.wait_gone`).

Within each of the two groups nothing waits for anything: every delete is sent at once, and
every update and create is sent at once as soon as the last delete is gone. The engine never
waits for a whole group to *settle* (three phases did: 2.9x the ideal on mixed applies); only
the creates' and updates' start waits for the deletes to be gone.
"""

from __future__ import annotations

from ..plan import Change


def deleted_first(changes: list[Change]) -> list[str]:
    """The UUIDs of the mappings the plan deletes (plainly or to replace them): every update
    and create of the plan waits until they are gone."""
    return [c.uuid for c in changes if c.action in ("delete", "replace") and c.uuid]
