"""`python -m broker` / `jobwire broker`: run one broker replica."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Sequence

from broker import config, logs


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="jobwire broker", description="Run a jobwire broker.")
    config.add_arguments(parser)
    args = parser.parse_args(argv)
    try:
        settings = config.Settings.from_args(args)
    except ValueError as error:
        parser.error(str(error))
    logs.quiet_grpc_core(settings.log_format)
    logs.configure(settings.log_level, settings.log_format)
    from broker import tracing  # imports grpc: after quiet_grpc_core
    from broker.server import serve

    exporter = config.trace_exporter()
    shutdown_tracing = tracing.setup(exporter) if exporter else None
    try:
        asyncio.run(serve(settings))
    except KeyboardInterrupt:
        pass
    except Exception as error:  # startup failures: one clear line, non-zero exit
        logging.getLogger("jobwire.broker").error("%s", error)
        return 1
    finally:
        if shutdown_tracing is not None:
            shutdown_tracing()  # sends the spans still buffered
    return 0


if __name__ == "__main__":
    sys.exit(main())
