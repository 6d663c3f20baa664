"""An AWS SAM template for a MangumWS app, read from its registry.

The WebSocket API routes ``$connect``, ``$disconnect``, ``$default`` and one route per custom
route key (``@ws.action(..., route=...)``) to one Lambda; with ``route_responses`` the message
routes are two-way. A DynamoDB table with TTL holds the connections and topics, and the function
may call ``execute-api:ManageConnections`` on its own API only.

With an ``@ws.authorizer``, ``$connect`` is authorized by a Lambda REQUEST authorizer with its
identity sources, served by the same function.

When an action runs in the background (``@ws.action(..., background=True)``), and only then,
the function may also invoke itself (``lambda:InvokeFunction`` on its own ARN, in a policy of
its own: inside the function's ``Policies`` the reference would be circular), gets the key
that seals those invocations from a generated secret (``MANGUM_WS_BACKGROUND_KEY``), a timeout
of 900 s unless one is given, and no retries of asynchronous invocations (a retry would run the
action again and repeat frames the client already has).

With a fan-out queue (``fanout_queue=True``, or a MangumWS built with ``fanout_queue=``), the
template adds the SQS queue big publishes go through (``MANGUM_WS_FANOUT_QUEUE`` holds its URL:
``MangumWS(fanout_queue=os.environ.get("MANGUM_WS_FANOUT_QUEUE"))``), a dead-letter queue
for records that fail three times, the event source mapping that hands the queue to the same
function with ``ReportBatchItemFailures``, the right to send to the queue (SAM adds the right
to consume it), and the key that seals the batches (the background actions' key).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from ..background import KEY_VARIABLE
from ..fanout_queue import QUEUE_VARIABLE

if TYPE_CHECKING:
    from ..app import MangumWS
    from ..auth import AuthorizerSpec

_LIFECYCLE = ("$connect", "$disconnect")


def _logical_id(route_key: str) -> str:
    words = re.findall(r"[A-Za-z0-9]+", route_key)
    return "Route" + "".join(w[:1].upper() + w[1:] for w in words)


def sam_template(
    ws: MangumWS,
    *,
    handler: str = "app.handler",
    code_uri: str = ".",
    runtime: str = "python3.12",
    memory_size: int = 512,
    timeout: int | None = None,
    fanout_queue: bool | None = None,
) -> dict[str, Any]:
    background = any(spec.background for spec in ws.registry.actions.values())
    if timeout is None:  # background actions are there to run past API Gateway's 29 s
        timeout = 900 if background else 30
    route_keys = ["$connect", "$disconnect", "$default", *sorted(ws.registry.routes)]
    resources: dict[str, Any] = {
        "ConnectionsTable": {
            "Type": "AWS::DynamoDB::Table",
            "Properties": {
                "BillingMode": "PAY_PER_REQUEST",
                "AttributeDefinitions": [
                    {"AttributeName": "pk", "AttributeType": "S"},
                    {"AttributeName": "sk", "AttributeType": "S"},
                ],
                "KeySchema": [
                    {"AttributeName": "pk", "KeyType": "HASH"},
                    {"AttributeName": "sk", "KeyType": "RANGE"},
                ],
                # $disconnect is best-effort: items expire on their own (DynamoDBStore sets ttl).
                "TimeToLiveSpecification": {"AttributeName": "ttl", "Enabled": True},
            },
        },
        "WebSocketApi": {
            "Type": "AWS::ApiGatewayV2::Api",
            "Properties": {
                "Name": {"Fn::Sub": "${AWS::StackName}-websocket"},
                "ProtocolType": "WEBSOCKET",
                "RouteSelectionExpression": "$request.body.action",
            },
        },
        "LambdaIntegration": {
            "Type": "AWS::ApiGatewayV2::Integration",
            "Properties": {
                "ApiId": {"Ref": "WebSocketApi"},
                "IntegrationType": "AWS_PROXY",
                "IntegrationUri": {
                    "Fn::Sub": "arn:${AWS::Partition}:apigateway:${AWS::Region}:lambda:path"
                    "/2015-03-31/functions/${WebSocketFunction.Arn}/invocations"
                },
            },
        },
    }
    route_ids = []
    for key in route_keys:
        logical = _logical_id(key)
        route_ids.append(logical)
        route: dict[str, Any] = {
            "ApiId": {"Ref": "WebSocketApi"},
            "RouteKey": key,
            "OperationName": logical,
            "Target": {"Fn::Sub": "integrations/${LambdaIntegration}"},
        }
        if ws.route_responses and key not in _LIFECYCLE:
            route["RouteResponseSelectionExpression"] = "$default"
            resources[f"{logical}Response"] = {
                "Type": "AWS::ApiGatewayV2::RouteResponse",
                "Properties": {
                    "ApiId": {"Ref": "WebSocketApi"},
                    "RouteId": {"Ref": logical},
                    "RouteResponseKey": "$default",
                },
            }
        resources[logical] = {"Type": "AWS::ApiGatewayV2::Route", "Properties": route}
    resources["Deployment"] = {
        "Type": "AWS::ApiGatewayV2::Deployment",
        "DependsOn": route_ids,
        "Properties": {"ApiId": {"Ref": "WebSocketApi"}},
    }
    resources["Stage"] = {
        "Type": "AWS::ApiGatewayV2::Stage",
        "Properties": {
            "ApiId": {"Ref": "WebSocketApi"},
            "StageName": {"Ref": "StageName"},
            "DeploymentId": {"Ref": "Deployment"},
        },
    }
    resources["WebSocketFunction"] = {
        "Type": "AWS::Serverless::Function",
        "Properties": {
            "Handler": handler,
            "Runtime": runtime,
            "CodeUri": code_uri,
            "MemorySize": memory_size,
            "Timeout": timeout,
            "Environment": {
                "Variables": {
                    "APIGW_MANAGEMENT_URL": {
                        "Fn::Sub": "https://${WebSocketApi}.execute-api.${AWS::Region}"
                        ".${AWS::URLSuffix}/${StageName}"
                    },
                    "CONNECTIONS_TABLE": {"Ref": "ConnectionsTable"},
                }
            },
            "Policies": [
                {"DynamoDBCrudPolicy": {"TableName": {"Ref": "ConnectionsTable"}}},
                {
                    "Version": "2012-10-17",
                    "Statement": [
                        {
                            "Effect": "Allow",
                            "Action": "execute-api:ManageConnections",
                            "Resource": {
                                "Fn::Sub": "arn:${AWS::Partition}:execute-api:${AWS::Region}:"
                                "${AWS::AccountId}:${WebSocketApi}/${StageName}/*"
                            },
                        }
                    ],
                },
            ],
        },
    }
    if background:
        _run_in_background(resources)
    if ws.registry.authorizer is not None:
        _authorize_connect(resources, ws.registry.authorizer)
    if ws.fanout is not None if fanout_queue is None else fanout_queue:
        _fan_out_through_sqs(resources, timeout)
    resources["InvokePermission"] = {
        "Type": "AWS::Lambda::Permission",
        "Properties": {
            "Action": "lambda:InvokeFunction",
            "FunctionName": {"Ref": "WebSocketFunction"},
            "Principal": "apigateway.amazonaws.com",
            "SourceArn": {
                "Fn::Sub": "arn:${AWS::Partition}:execute-api:${AWS::Region}:${AWS::AccountId}:"
                "${WebSocketApi}/*"
            },
        },
    }
    return {
        "AWSTemplateFormatVersion": "2010-09-09",
        "Transform": "AWS::Serverless-2016-10-31",
        "Description": "WebSocket API on Lambda, generated by mangum-ws from the app's registry",
        "Parameters": {"StageName": {"Type": "String", "Default": "prod"}},
        "Resources": resources,
        "Outputs": {
            "WebSocketUrl": {
                "Value": {
                    "Fn::Sub": "wss://${WebSocketApi}.execute-api.${AWS::Region}"
                    ".${AWS::URLSuffix}/${StageName}"
                }
            },
            "ConnectionsTableName": {"Value": {"Ref": "ConnectionsTable"}},
        },
    }


def _signing_key(resources: dict[str, Any]) -> None:
    """The secret that seals what the function sends itself: background invocations, fan-out
    batches."""
    resources["BackgroundKey"] = {
        "Type": "AWS::SecretsManager::Secret",
        "Properties": {
            "Description": "seals what the function sends itself (mangum-ws background "
            "actions and fan-out batches)",
            "GenerateSecretString": {"PasswordLength": 64, "ExcludePunctuation": True},
        },
    }
    function = resources["WebSocketFunction"]["Properties"]
    function["Environment"]["Variables"][KEY_VARIABLE] = {
        "Fn::Sub": "{{resolve:secretsmanager:${BackgroundKey}:SecretString}}"
    }


def _run_in_background(resources: dict[str, Any]) -> None:
    _signing_key(resources)
    function = resources["WebSocketFunction"]["Properties"]
    function["EventInvokeConfig"] = {
        "MaximumRetryAttempts": 0,
        # API Gateway closes every connection within 2 h: older events have no one to answer.
        "MaximumEventAgeInSeconds": 7200,
    }
    resources["BackgroundInvokePolicy"] = {
        "Type": "AWS::IAM::Policy",
        "Properties": {
            "PolicyName": "invoke-itself",
            "Roles": [{"Ref": "WebSocketFunctionRole"}],  # the role SAM makes for the function
            "PolicyDocument": {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Action": "lambda:InvokeFunction",
                        "Resource": [
                            {"Fn::GetAtt": ["WebSocketFunction", "Arn"]},
                            {"Fn::Sub": "${WebSocketFunction.Arn}:*"},
                        ],
                    }
                ],
            },
        },
    }


# The @ws.authorizer block ------------------------------------------------------------------


def _authorize_connect(resources: dict[str, Any], spec: AuthorizerSpec) -> None:
    """A Lambda REQUEST authorizer on $connect, served by the same function (its
    ``ws.handler`` answers authorizer events with a policy). The function's InvokePermission
    already covers ``${WebSocketApi}/*``, the authorizer's source ARN included."""
    authorizer: dict[str, Any] = {
        "ApiId": {"Ref": "WebSocketApi"},
        "Name": "ConnectAuthorizer",
        "AuthorizerType": "REQUEST",
        "AuthorizerUri": {
            "Fn::Sub": "arn:${AWS::Partition}:apigateway:${AWS::Region}:lambda:path"
            "/2015-03-31/functions/${WebSocketFunction.Arn}/invocations"
        },
    }
    if spec.identity:
        authorizer["IdentitySource"] = [source.expression for source in spec.identity]
    resources["ConnectAuthorizer"] = {
        "Type": "AWS::ApiGatewayV2::Authorizer",
        "Properties": authorizer,
    }
    connect = resources[_logical_id("$connect")]["Properties"]
    connect["AuthorizationType"] = "CUSTOM"
    connect["AuthorizerId"] = {"Ref": "ConnectAuthorizer"}


# Fan-out through SQS --------------------------------------------------------------------------
# A record is a batch of at most 500 ids (fanout_queue.py); ten of them are a few seconds of
# posting. A record that fails three times (an id that keeps failing, a forged record) goes to
# the dead-letter queue, kept 14 days to be looked at.
FANOUT_BATCH_SIZE = 10
FANOUT_MAX_RECEIVES = 3


def _fan_out_through_sqs(resources: dict[str, Any], timeout: int) -> None:
    _signing_key(resources)
    resources["FanoutDeadLetterQueue"] = {
        "Type": "AWS::SQS::Queue",
        "Properties": {"MessageRetentionPeriod": 1209600},
    }
    resources["FanoutQueue"] = {
        "Type": "AWS::SQS::Queue",
        "Properties": {
            # AWS's advice for an event source: at least six times the function's timeout.
            "VisibilityTimeout": 6 * timeout,
            # A batch older than any connection can live (2 h) has no one left to reach.
            "MessageRetentionPeriod": 7500,
            "RedrivePolicy": {
                "deadLetterTargetArn": {"Fn::GetAtt": ["FanoutDeadLetterQueue", "Arn"]},
                "maxReceiveCount": FANOUT_MAX_RECEIVES,
            },
        },
    }
    function = resources["WebSocketFunction"]["Properties"]
    function["Environment"]["Variables"][QUEUE_VARIABLE] = {"Ref": "FanoutQueue"}
    function["Policies"].append(
        {"SQSSendMessagePolicy": {"QueueName": {"Fn::GetAtt": ["FanoutQueue", "QueueName"]}}}
    )
    function["Events"] = {
        "FanoutBatches": {
            "Type": "SQS",  # SAM adds the right to receive and delete the queue's messages
            "Properties": {
                "Queue": {"Fn::GetAtt": ["FanoutQueue", "Arn"]},
                "BatchSize": FANOUT_BATCH_SIZE,
                "FunctionResponseTypes": ["ReportBatchItemFailures"],
            },
        }
    }
