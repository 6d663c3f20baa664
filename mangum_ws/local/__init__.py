"""A local API Gateway for WebSocket APIs: real sockets in front of the real Lambda handler.

python -m mangum_ws.local examples.demochat:handler --port 3001
"""

from .gateway import LocalApiGatewayApp
from .lambda_runtime import LambdaContext
from .server import LocalApiGateway
from .settings import GatewaySettings

__all__ = ["GatewaySettings", "LambdaContext", "LocalApiGateway", "LocalApiGatewayApp"]
