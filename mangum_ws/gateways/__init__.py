"""Where pushes go: API Gateway's management API on AWS, the open sockets locally."""

from .aws import AwsGateway
from .base import Gateway
from .sockets import SocketGateway

__all__ = ["AwsGateway", "Gateway", "SocketGateway"]
