"""iotids: intrusion detection for IoT networks on CICFlowMeter flow features (CICIDS2017).

The heavy libraries (torch, onnxruntime, fastapi) are imported only by the modules that use them, so
``import iotids`` and the CLI start fast.
"""

from iotids.errors import DataFormatError, IotidsError, SchemaMismatchError

__version__ = "0.1.0"

__all__ = ["DataFormatError", "IotidsError", "SchemaMismatchError", "__version__"]
