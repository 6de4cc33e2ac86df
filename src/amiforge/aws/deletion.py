"""The deletion gate's executor: the only code that deregisters images or deletes snapshots.

Each function takes a :class:`~amiforge.core.deletion.Verdict` from the pure gate
(``core/deletion.py``) and refuses anything but a ``delete`` verdict for the resource it
is asked to remove, so no path can remove an image or snapshot without the gate's say.
``tests/unit/core/test_deletion_only_through_gate.py`` holds that no other module of
``src/`` calls ``DeregisterImage`` or ``DeleteSnapshot``.
"""

from __future__ import annotations

from typing import Any

from amiforge.aws.ec2 import NOT_FOUND_AMI
from amiforge.aws.errors import ClientError, aws_call, error_code, translate
from amiforge.core.deletion import Verdict


class NotApproved(Exception):
    """A removal was attempted without the gate's delete verdict (a programming error)."""


def _approved(resource: str, verdict: Verdict) -> None:
    if not verdict.delete or verdict.resource != resource:
        raise NotApproved(f"{resource}: the deletion gate said {verdict.action} "
                          f"({verdict.reason}) for {verdict.resource or 'nothing'}")


def deregister_approved(ec2: Any, image_id: str, verdict: Verdict) -> None:
    """Deregister ``image_id``; an image already gone is fine."""
    _approved(image_id, verdict)
    with aws_call("DeregisterImage"):
        try:
            ec2.deregister_image(ImageId=image_id)
        except ClientError as err:
            if error_code(err) not in NOT_FOUND_AMI:
                raise


def delete_snapshot_approved(ec2: Any, snapshot_id: str, verdict: Verdict) -> bool:
    """Delete ``snapshot_id``; True if gone (or already gone), False if an image still
    uses it (EC2 refuses: ``InvalidSnapshot.InUse``)."""
    _approved(snapshot_id, verdict)
    try:
        ec2.delete_snapshot(SnapshotId=snapshot_id)
    except ClientError as err:
        code = error_code(err)
        if code == "InvalidSnapshot.NotFound":
            return True
        if code == "InvalidSnapshot.InUse":
            return False
        raise translate(err, "DeleteSnapshot") from err
    return True
