"""jobwire broker: a gRPC job-queue broker with Minion's semantics on Redis."""
