"""Stage 1: the doors. Receivers (OTLP/HTTP, OTLP/gRPC, the REST write API) read, decode, admit and
validate a request, then hand it to the one export path.
"""
