"""Generated from proto/jobwire/v1 by scripts/generate.sh; do not edit."""
