"""iotids: intrusion detection for IoT networks on CICFlowMeter flow features (CICIDS2017).

The heavy libraries (torch, onnxruntime, fastapi) are imported only by the modules that use them, so
``import iotids`` and the CLI start fast.
"""

import os

from iotids.errors import DataFormatError, IotidsError, SchemaMismatchError

# torch's OpenMP workers sleep while they wait instead of spinning: on a busy machine with few cores, spinning
# workers starve each other (2 threads, 2 busy cores: 233 -> 14,466 training flows/s; benchmarks/results/train.md).
# Only a default: it must be set before torch starts, and a value set by the user wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

__version__ = "0.1.0"

__all__ = ["DataFormatError", "IotidsError", "SchemaMismatchError", "__version__"]
