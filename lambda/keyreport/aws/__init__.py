"""The AWS side: the function's clients, the IAM inventory with its credential report, Organizations fan-out."""
