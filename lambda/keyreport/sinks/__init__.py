"""Sinks take rows and say what was delivered and what failed; each module is one sink, made by its `build`.

Importing this package loads no Azure SDK: the sink modules are imported only when a sink is built
(keyreport.wiring, through the settings type that names the sink's builder).
"""

from keyreport.sinks.base import Delivery, FailedBatch, Sink, Table

__all__ = ["Delivery", "FailedBatch", "Sink", "Table"]
