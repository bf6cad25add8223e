"""Stock Python grpcio clients against the demo server: reflection (grpcio-reflection's
descriptor database, which speaks grpc.reflection.v1alpha) lists the services and resolves
the contract, and a call is made with message classes built from what reflection returned,
without any .proto file or generated code.

Usage: grpc_reflect.py HOST:PORT TOKEN
Prints: one line per service, then `GetUser u1 -> <display name>`.
"""

import sys

import grpc
from google.protobuf import descriptor_pool, message_factory
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import (
    ProtoReflectionDescriptorDatabase,
)


def main() -> None:
    target, token = sys.argv[1], sys.argv[2]
    channel = grpc.insecure_channel(target)
    database = ProtoReflectionDescriptorDatabase(channel)
    services = sorted(database.get_services())
    for name in services:
        print(f"service {name}")
    pool = descriptor_pool.DescriptorPool(database)
    service = pool.FindServiceByName("acme.users.v1.UserService")
    method = service.FindMethodByName("GetUser")
    request_class = message_factory.GetMessageClass(method.input_type)
    response_class = message_factory.GetMessageClass(method.output_type)
    call = channel.unary_unary(
        f"/{service.full_name}/{method.name}",
        request_serializer=request_class.SerializeToString,
        response_deserializer=response_class.FromString,
    )
    user = call(request_class(id="u1"), metadata=[("authorization", f"Bearer {token}")], timeout=10)
    print(f"GetUser u1 -> {user.display_name}")


if __name__ == "__main__":
    main()
