"""The gRPC face: servicers that translate protobuf <-> domain, and the auth interceptor."""
