"""The spill bucket's hop: a probe object written as a spilled batch is (same encryption), then deleted."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

from botocore.exceptions import BotoCoreError, ClientError

from keyreport.check.explain import aws_failure
from keyreport.errors import aws_error_code

if TYPE_CHECKING:
    from keyreport.aws.clients import AwsClients

# Outside keyreport/spill/, so `keyreport replay` never mistakes a probe for a batch; the function's role may
# delete under this prefix only.
PROBE_PREFIX = "keyreport/check/"


def probe_bucket(aws: AwsClients, bucket: str) -> str:
    s3 = aws.client("s3")
    key = f"{PROBE_PREFIX}probe-{uuid.uuid4()}"
    try:
        s3.put_object(Bucket=bucket, Key=key, Body=b"keyreport check", ServerSideEncryption="AES256")
    except (ClientError, BotoCoreError) as error:
        failure = aws_failure(error, "s3:PutObject", f"arn:aws:s3:::{bucket}/*")
        if aws_error_code(error) == "NoSuchBucket":
            failure.cause, failure.fix = f"there is no bucket {bucket}", "set KEYREPORT_SPILL_BUCKET to the stack's"
        raise failure from None
    try:
        s3.delete_object(Bucket=bucket, Key=key)
    except (ClientError, BotoCoreError) as error:
        failure = aws_failure(error, "s3:DeleteObject", f"arn:aws:s3:::{bucket}/{PROBE_PREFIX}*")
        failure.detail = f"s3://{bucket}/{key} was written but not deleted ({failure.detail}): delete it by hand"
        raise failure from None
    return f"s3://{bucket}: a probe object was written (AES256) and deleted"
